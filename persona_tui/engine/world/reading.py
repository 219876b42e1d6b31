"""What a description asks for: places, jobs, an age range, and whether life is rural.

A job the tables do not know is kept in the description's own words ("tram drivers in Leeds":
"Tram Driver"), when the words clearly name someone by what they do.

Reading is kept apart from composing so each can be understood (and tested) alone: this
module never touches randomness, so the same description always reads the same way, and
the composer decides what to make of it. The regexes are built from the tables on first
use, not at import.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from typing import NamedTuple

from persona_tui.engine.world.tables import Job, load_tables

_PARENTS = r"(?:parents?|mothers?|fathers?|moms?|mums?|dads?)"
_AGE_WORDS = (  # the people described, before whom they are described by ("parents of teenagers" are not teens)
    (r"grand(?:mother|father|parent|ma|pa|mum|mom|dad)s?", 55, 85),
    (rf"{_PARENTS} of (?:toddlers?|babies|infants?|newborns?|young (?:children|kids)|small children)", 22, 40),
    (rf"{_PARENTS} of (?:teen(?:ager)?s?|adolescents?|students?)", 38, 58),
    (rf"(?:new |first[- ]time |single |working |stay[- ]at[- ]home )?{_PARENTS}", 24, 55),
    (r"teen(?:ager|age)?s?|adolescents?", 13, 19), (r"high school|secondary school|pupils?", 14, 18),
    (r"students?|undergrad(?:uate)?s?", 18, 26), (r"young adults?|gen(?:eration)? ?z", 18, 28),
    (r"millennials?", 29, 44), (r"middle[- ]aged", 40, 60), (r"gen(?:eration)? ?x", 45, 60),
    (r"retire(?:d|es?)|pensioners?|seniors?|elderly|older adults?|(?:baby )?boomers?", 62, 85),
    (r"kids|children", 6, 12),
)  # fmt: skip
_DECADES = {"twenties": 2, "thirties": 3, "forties": 4, "fifties": 5, "sixties": 6, "seventies": 7, "eighties": 8}
_NOT_AGE = (  # numbers that count something else: "10-15 years of experience", "over 100 employees"
    r"(?!\+?\s*(?:%|percent|k\b|(?:years?|yrs?)\s+(?:of|in|experience)|(?:employees|staff|people|users|customers"
    r"|clients|patients|members|beds|acres|hectares|hours|days|weeks|months|minutes|km|kg|miles)\b))"
)
_PART = {"early": (0, 3), "mid": (3, 6), "late": (6, 9), None: (0, 9)}
_RURAL = re.compile(r"\b(?:rural|villages?|countryside)\b", re.I)


class Place(NamedTuple):
    """A place named in a description: the cities to pick from (none: any of the country's)."""

    cities: tuple[str, ...]
    country: str


class PlaceMatcher(NamedTuple):
    """How one place is found in a (folded) description."""

    pattern: re.Pattern[str]
    cities: tuple[str, ...]  # one for a city, several for a region, none for a country
    country: str
    strong: bool  # names the place itself, not a demonym ("Kenyan")


class JobMatcher(NamedTuple):
    pattern: re.Pattern[str]
    job: Job


class Matchers(NamedTuple):
    places: tuple[PlaceMatcher, ...]  # regions first ("New Mexico" is not Mexico), a city before its country
    jobs: tuple[JobMatcher, ...]


class Wanted(NamedTuple):
    """Everything a description asks for."""

    places: tuple[Place, ...]  # in the order named; several places take turns
    jobs: tuple[Job, ...]  # earliest (then longest) first
    age_range: tuple[int, int] | None
    rural: bool


def read_description(text: str) -> Wanted:
    """What the description asks for."""
    return Wanted(tuple(_places(text)), tuple(_occupations(text)), _age_range(text), _RURAL.search(text) is not None)


def fold(text: str) -> str:
    """Lower case without accents, so 'Sao Paulo' finds 'São Paulo'."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def _words(forms: Iterable[str], plural: bool = False) -> re.Pattern[str]:
    """A regex for any of the forms as whole words (and their plurals)."""
    alts = "|".join(re.escape(fold(f)).replace(r"\ ", r"[\s-]+") + ("(?:e?s)?" if plural else "") for f in forms)
    return re.compile(rf"(?<![\w.])(?<!latin )(?<!south )(?<!central )(?:{alts})(?!\w)")


@functools.cache
def matchers() -> Matchers:
    """The tables' regexes, built on first use to keep import fast."""
    tables = load_tables()
    places = [
        PlaceMatcher(
            _words(region.forms),
            tuple(city if ", " in city else f"{city}, {region.name}" for city in region.cities),
            region.country,
            True,
        )
        for region in tables.regions
    ]
    for country in tables.countries.values():
        for city in country.cities:
            places.append(
                PlaceMatcher(_words((city, *country.city_aliases.get(city, ()))), (city,), country.name, True)
            )
        places.append(PlaceMatcher(_words((country.name, *country.aliases)), (), country.name, True))
        if country.demonyms:
            places.append(PlaceMatcher(_words(country.demonyms, plural=True), (), country.name, False))
    jobs = tuple(JobMatcher(_words(job.forms, plural=True), job) for job in tables.jobs)
    return Matchers(tuple(places), jobs)


def _first_free(matcher: PlaceMatcher, folded: str, taken: Iterable[tuple[int, int]]) -> re.Match[str] | None:
    """The first match not inside a place already found; for a region, not "Kansas City" (a city)."""
    region = len(matcher.cities) > 1
    return next(
        (
            m
            for m in matcher.pattern.finditer(folded)
            if not any(s <= m.start() < e for s, e in taken)
            and not (region and re.match(r"[\s-]+city\b", folded[m.end() :]))
        ),
        None,
    )


def _places(text: str) -> list[Place]:
    """Places named in the description, in order."""
    folded = fold(text)
    hits: list[tuple[int, int, tuple[str, ...], str, bool]] = []
    in_regions: set[str] = set()  # cities named with their region ("Austin, Texas"), placed there
    for matcher in matchers().places:
        cities = matcher.cities
        m = _first_free(matcher, folded, [(s, e) for s, e, *_ in hits])
        if m is None:
            continue
        if len(cities) > 1:  # a city of the region written just before it ("Austin, Texas"): that one
            before = folded[: m.start()]
            named = tuple(
                c for c in cities if re.search(rf"(?<![\w.]){re.escape(fold(c.partition(', ')[0]))}[\s,]+$", before)
            )
            cities = named or cities
            in_regions.update(c.partition(", ")[0] for c in named)
        elif cities and cities[0] in in_regions and folded.count(fold(cities[0])) == 1:
            continue  # that city was named with its region, not on its own
        hits.append((m.start(), m.end(), cities, matcher.country, matcher.strong))
    named_place = any(strong for *_, strong in hits)
    with_city = {country for _, _, cities, country, _ in hits if cities}
    return [
        Place(cities, country)
        for _, _, cities, country, strong in sorted(hits)
        if (strong or not named_place) and (cities or country not in with_city)  # "Sydney, Australia" is Sydney
    ]


def _occupations(text: str) -> list[Job]:
    """Jobs named in the description, earliest (then longest) first; else the description's own words."""
    folded = fold(text)
    found = [
        (m.start(), -len(m[0]), i, jm.job) for i, jm in enumerate(matchers().jobs) if (m := jm.pattern.search(folded))
    ]
    jobs = [job for *_, job in sorted(found)]
    if all(job.titles == ("Retired",) for job in jobs) and (own := own_words_job(text)):
        jobs.append(own)  # "retired tram drivers": Retired, and the job in the description's words
    return jobs


# The phrase before these is the people asked for: "bus drivers in Leeds", "tram drivers who cycle".
_PHRASE_END = re.compile(
    r"\s+(?:in|from|of|at|on|for|with|without|who|that|aged?|ages|between|over|under|living|working|based|near|across"
    r"|around|and|or)\b|\s*[,;:(]|\s+\d",
    re.I,
)
_LEAD = {
    "a",
    "an",
    "the",
    "some",
    "many",
    "few",
    "young",
    "old",
    "older",
    "elderly",
    "senior",
    "retired",
    "busy",
    "new",
}
# Heads that name people in general, not a job: "people who like cats" has no occupation.
_NOT_JOBS = {
    "people", "person", "persons", "folk", "folks", "user", "users", "customer", "customers", "shopper", "shoppers",
    "adult", "adults", "man", "men", "woman", "women", "kid", "kids", "child", "children", "teen", "teens", "teenager",
    "teenagers", "member", "members", "fan", "fans", "gamer", "gamers", "player", "players", "traveller", "travellers",
    "traveler", "travelers", "commuter", "commuters", "resident", "residents", "citizen", "citizens", "voter",
    "voters", "reader", "readers", "viewer", "viewers", "listener", "listeners", "buyer", "buyers", "consumer",
    "consumers", "lover", "lovers", "beginner", "beginners", "owner", "owners", "team", "teams", "family",
    "families", "household", "households", "couple", "couples", "millennial", "millennials", "boomer", "boomers",
    "senior", "seniors", "immigrant", "immigrants", "newcomer", "newcomers", "patient", "patients", "someone",
    "anyone", "everyone", "individual", "individuals", "persona", "personas", "friend", "friends", "human", "humans",
    "subscriber", "subscribers", "follower", "followers", "guy", "guys", "girl", "girls", "boy", "boys", "pet",
    "pets", "dog", "dogs", "cat", "cats", "retiree", "retirees", "pensioner", "pensioners", "student", "students",
    "parent", "parents", "worker", "workers", "employee", "employees", "professional", "professionals",
    "staff", "crew", "crews", "mother", "mothers", "father", "fathers", "grandmother", "grandmothers",
    "grandfather", "grandfathers", "grandparent", "grandparents", "sister", "sisters", "brother", "brothers",
    "daughter", "daughters", "son", "sons", "wife", "wives", "husband", "husbands", "partner", "partners",
    "volunteer", "volunteers", "learner", "learners", "visitor", "visitors", "tenant", "tenants", "homeowner",
    "homeowners", "renter", "renters", "client", "clients", "caller", "callers", "stakeholder", "stakeholders",
}  # fmt: skip
# Word endings that name someone by what they do: "driver", "cyclist", "technician", "accountant".
_AGENT = re.compile(
    r"(?:er|or|ist|ian|ant|ent|eer|man|men|ess|ier|yer|ic|ee|wright|smith|hand|staff|crew|guard|keeper|coach|coache|chef|cook|clerk|pilot|aide|nanny|nannie|maid|rep)s?$"
)


def own_words_job(text: str) -> Job | None:
    """A job in the description's own words when the tables know none: "bus drivers in Leeds" gives "Bus Driver".

    Conservative: only a short noun phrase at the start whose last word names someone by what they
    do ("driver", "cyclist"), not people in general ("people who like cats" gives none).
    """
    head = _PHRASE_END.split(text.strip(), maxsplit=1)[0]
    words = [w for w in re.findall(r"[^\W\d_](?:[\w'-]*\w)?", head)]
    demonyms = {fold(d) for c in load_tables().countries.values() for d in (*c.demonyms, c.name)}
    while words and (fold(words[0]) in _LEAD or fold(words[0]).rstrip("s") in demonyms):
        words = words[1:]
    if not 1 <= len(words) <= 3 or fold(words[-1]) in _NOT_JOBS or not _AGENT.search(fold(words[-1])):
        return None
    title = " ".join([*(w[:1].upper() + w[1:] for w in words[:-1]), _singular(words[-1]).capitalize()])
    return Job(forms=(" ".join(words),), titles=(title,), tech=0)


def _singular(word: str) -> str:
    """The singular of a plural noun naming people ("drivers", "firemen", "nannies"); the word if not plural."""
    lower = word.lower()
    for plural, single in (("men", "man"), ("ies", "y"), ("sses", "ss"), ("ches", "ch"), ("shes", "sh")):
        if lower.endswith(plural) and len(lower) > len(plural) + 1:
            return lower[: -len(plural)] + single
    return lower[:-1] if lower.endswith("s") and not lower.endswith("ss") else lower


def _age_range(text: str) -> tuple[int, int] | None:
    """The age range the description asks for, if it states one."""
    t = text.lower()
    ranges = rf"\bbetween\s+(\d{{1,3}})\s+and\s+(\d{{1,3}})\b|\b(\d{{1,3}})\s*(?:-|–|—|to)\s*(\d{{1,3}})\b{_NOT_AGE}"
    for r in re.finditer(ranges, t):
        lo, hi = int(r[1] or r[3]), int(r[2] or r[4])
        if lo <= hi <= 120 and hi >= 10:
            return lo, hi
    if m := re.search(r"\b(?:aged?|ages)\s+(\d{1,3})\b|\b(\d{1,3})[\s-]*years?[\s-]*old\b", t):
        n = int(m[1] or m[2])
        return (n, n) if n <= 120 else None
    decades = rf"\b(?:(early|mid|late)[\s-]*)?(?:(\d)0(?:s|[\s-]*somethings?)|({'|'.join(_DECADES)}))\b"
    if m := re.search(decades, t):
        base = 10 * (int(m[2]) if m[2] else _DECADES[m[3]])
        return base + _PART[m[1]][0], base + _PART[m[1]][1]
    if m := re.search(
        rf"\b(\d{{1,3}})\s*\+|\b(?:over|above|older than)\s+(?:the age of\s+)?(\d{{1,3}})\b{_NOT_AGE}", t
    ):
        lo = int(m[1]) if m[1] else int(m[2]) + 1
        return (lo, max(lo, min(lo + 25, 95))) if 10 <= lo <= 110 else None
    if m := re.search(rf"\b(?:under|below|younger than)\s+(?:the age of\s+)?(\d{{1,3}})s?\b{_NOT_AGE}", t):
        hi = int(m[1]) - 1
        return (18 if hi >= 22 else max(0, hi - 6), hi) if 1 <= hi <= 110 else None
    return next(((lo, hi) for word, lo, hi in _AGE_WORDS if re.search(rf"\b(?:{word})\b", t)), None)


_SHE = re.compile(
    r"\b(?:women|woman|female|girls?|ladies|lady|mothers?|moms?|mums?|grand(?:mother|ma|mum|mom)s?|wives|wife"
    r"|daughters?|sisters?|nuns?|widows?|queens?|actresses|waitresses|midwives|she/her)\b",
    re.I,
)
_HE = re.compile(
    r"\b(?:men|man|male|boys?|gentlemen|fathers?|dads?|grand(?:father|pa|dad)s?|husbands?|sons?|brothers?"
    r"|monks?|widowers?|kings?|he/him)\b",
    re.I,
)


def pronouns_named(text: str) -> str | None:
    """The pronouns a description implies when it names only women or only men ("single mothers")."""
    she, he = _SHE.search(text) is not None, _HE.search(text) is not None
    if she == he:  # neither, or both ("mothers and fathers")
        return None
    return "she/her" if she else "he/him"
