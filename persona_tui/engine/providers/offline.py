"""The offline sample generator: plausible personas composed locally, without a model.

It is the default when no API key is set, so the app works out of the box. It
streams its JSON in token-sized pieces, paced like a model, so the live view
behaves the same; but it is not AI, and its ``label`` and ``is_ai`` say so.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import random
import re
import threading
import time
import unicodedata
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

from pydantic import BaseModel, Field

from persona_tui.config import Settings
from persona_tui.engine.models import Persona, TechSavviness
from persona_tui.engine.providers.base import PromptSpec, ProviderInfo
from persona_tui.engine.providers.parts import AnswerPart, StreamPart

if TYPE_CHECKING:
    from faker import Faker

# Country/other names ~ demonyms : Faker locales for names : cities (each also recognised in a description).
# * marks the default countries, for descriptions that name no place. Demonyms count only when nothing
# else names a place, since "French teachers in Canada" is about Canada.
# Locales Faker lacks, or that have no names of their own, give en_US names; the place stays.
# Right-to-left names (Hebrew, Persian) are kept: terminals without bidi support may show them reversed.
_COUNTRY_TABLE = """\
*United States/USA/U.S./America ~ American : en_US : New York/NYC, Chicago, Houston, Atlanta, Seattle, Los Angeles
*Canada ~ Canadian : en_CA fr_CA : Toronto, Montreal, Vancouver, Calgary, Winnipeg, Halifax
*Mexico ~ Mexican : es_MX : Mexico City, Guadalajara, Monterrey, Puebla, Oaxaca
*Brazil ~ Brazilian : pt_BR : São Paulo/Sao Paulo, Rio de Janeiro, Recife, Salvador, Curitiba, Belo Horizonte
*Argentina ~ Argentine/Argentinian : es_AR : Buenos Aires, Córdoba, Rosario, Mendoza
Colombia ~ Colombian : es_CO : Bogotá, Medellín, Cali, Barranquilla
Chile ~ Chilean : es_CL : Santiago, Valparaíso, Concepción, Antofagasta
Peru ~ Peruvian : es_CO : Lima, Arequipa, Cusco, Trujillo
*United Kingdom/UK/Britain/England/Scotland/Wales ~ British : en_GB : London, Manchester, Bristol, Glasgow, Cardiff
*Ireland ~ Irish : en_IE : Dublin, Galway, Limerick, Waterford
*France ~ French : fr_FR : Paris, Lyon, Marseille, Toulouse, Lille, Nantes
*Germany ~ German : de_DE : Berlin, Munich, Hamburg, Cologne, Leipzig, Frankfurt
*Spain ~ Spanish/Spaniard : es_ES : Madrid, Barcelona, Valencia, Seville, Bilbao
Portugal ~ Portuguese : pt_PT : Lisbon, Porto, Braga, Coimbra
*Italy ~ Italian : it_IT : Rome, Milan, Naples, Turin, Bologna, Palermo
*Netherlands/Holland ~ Dutch : nl_NL : Amsterdam, Rotterdam, Utrecht, Eindhoven
Belgium ~ Belgian : nl_BE fr_BE : Brussels, Antwerp, Ghent, Liège
Switzerland ~ Swiss : de_CH fr_CH it_CH : Zürich/Zurich, Geneva, Basel, Bern, Lausanne
Austria ~ Austrian : de_AT : Vienna, Graz, Linz, Salzburg
*Sweden ~ Swedish/Swede : sv_SE : Stockholm, Gothenburg, Malmö, Uppsala
Norway ~ Norwegian : no_NO : Oslo, Bergen, Trondheim, Stavanger
Denmark ~ Danish/Dane : da_DK : Copenhagen, Aarhus, Odense, Aalborg
Finland ~ Finnish/Finn : fi_FI : Helsinki, Tampere, Turku, Oulu
*Poland ~ Polish : pl_PL : Warsaw, Kraków/Krakow, Wrocław/Wroclaw, Gdańsk/Gdansk, Poznań
Czechia/Czech Republic ~ Czech : cs_CZ : Prague, Brno, Ostrava, Olomouc
Hungary ~ Hungarian : hu_HU : Budapest, Debrecen, Szeged, Pécs
Romania ~ Romanian : ro_RO : Bucharest, Cluj-Napoca, Iași/Iasi, Timișoara/Timisoara
Greece ~ Greek : el_GR : Athens, Thessaloniki, Patras, Heraklion
Ukraine ~ Ukrainian : uk_UA : Kyiv/Kiev, Lviv, Kharkiv, Odesa
Russia ~ Russian : ru_RU : Moscow, Saint Petersburg, Kazan, Novosibirsk, Yekaterinburg
*Turkey/Türkiye ~ Turkish/Turk : tr_TR : Istanbul, Ankara, Izmir, Bursa, Antalya
Israel ~ Israeli : he_IL : Tel Aviv, Jerusalem, Haifa, Beersheba
Iran ~ Iranian/Persian : fa_IR : Tehran, Isfahan, Shiraz, Mashhad, Tabriz
Egypt ~ Egyptian : ar_latn : Cairo, Alexandria, Giza, Luxor, Aswan
Saudi Arabia ~ Saudi : ar_latn : Riyadh, Jeddah, Dammam, Medina
*Nigeria ~ Nigerian : en_NG yo_NG ha_NG ig_NG : Lagos, Abuja, Ibadan, Kano, Port Harcourt, Enugu
*Kenya ~ Kenyan : en_KE : Nairobi, Mombasa, Kisumu, Nakuru, Eldoret, Nyeri
Ghana ~ Ghanaian : tw_GH : Accra, Kumasi, Takoradi, Cape Coast
*South Africa ~ South African : zu_ZA en_GB : Johannesburg/Joburg, Cape Town, Durban, Pretoria, Soweto
Ethiopia ~ Ethiopian : en_US : Addis Ababa, Hawassa, Bahir Dar, Dire Dawa
Tanzania ~ Tanzanian : sw : Dar es Salaam, Arusha, Mwanza, Dodoma
*India ~ Indian : en_IN : Mumbai/Bombay, Delhi/New Delhi, Bengaluru/Bangalore, Chennai, Pune, Jaipur, Kochi
Pakistan ~ Pakistani : ur_latn : Karachi, Lahore, Islamabad, Faisalabad, Peshawar
Bangladesh ~ Bangladeshi : bn_BD : Dhaka, Chittagong, Khulna, Sylhet
Nepal ~ Nepali/Nepalese : ne_NP : Kathmandu, Pokhara, Lalitpur
China ~ Chinese : zh_CN : Beijing, Shanghai, Shenzhen, Chengdu, Wuhan, Hangzhou
Taiwan ~ Taiwanese : zh_TW : Taipei, Taichung, Kaohsiung, Tainan
*Japan ~ Japanese : ja_JP : Tokyo, Osaka, Nagoya, Fukuoka, Sapporo, Kyoto
South Korea/Korea ~ Korean : ko_KR : Seoul, Busan, Incheon, Daegu
*Vietnam/Viet Nam ~ Vietnamese : vi_VN : Hanoi, Ho Chi Minh City/Saigon, Da Nang, Hai Phong
Thailand ~ Thai : th_TH : Bangkok, Chiang Mai, Khon Kaen, Phuket
*Indonesia ~ Indonesian : id_ID : Jakarta, Surabaya, Bandung, Medan, Yogyakarta
*Philippines ~ Filipino/Filipina : es_MX : Manila, Quezon City, Cebu City, Davao City
*Australia ~ Australian/Aussie : en_AU : Sydney, Melbourne, Brisbane, Perth, Adelaide
New Zealand ~ New Zealander/Kiwi : en_NZ : Auckland, Wellington, Christchurch, Dunedin
"""
# "forms: titles", where plurals of the forms match too; each leading + or - nudges tech_savviness.
_JOB_TABLE = """\
community health worker: Community Health Worker, Community Health Volunteer Coordinator;
nurse/nursing staff: Registered Nurse, Community Health Nurse, Ward Nurse, Nurse Practitioner;
+doctor/physician/GP: General Practitioner, Family Physician, Hospital Doctor;
pharmacist: Community Pharmacist, Hospital Pharmacist; dentist: Dentist, Dental Surgeon;
paramedic/EMT: Paramedic, Emergency Medical Technician;
-caregiver/carer/care worker: Home Caregiver, Care Worker, Elder Care Assistant;
clinic manager: Clinic Manager, Rural Clinic Manager, Outpatient Clinic Manager;
hospital administrator: Hospital Administrator, Health Services Administrator;
teacher: Primary School Teacher, Secondary School Teacher, Maths Teacher, Science Teacher;
+professor/lecturer/academic: University Lecturer, Associate Professor, Professor;
+high school student/secondary school student/pupil: High School Student, Secondary School Student;
+student/university student/college student/grad student: University Student, Graduate Student, College Student;
+researcher/scientist: Research Scientist, Postdoctoral Researcher, Lab Researcher;
++software engineer: Software Engineer, Senior Software Engineer, Backend Software Engineer;
++developer/software developer/web developer/programmer/coder: Web Developer, App Developer, Full-Stack Developer;
++data scientist/data analyst/analyst: Data Analyst, Data Scientist, Business Analyst;
+designer/UX designer/graphic designer: UX Designer, Product Designer, Graphic Designer;
+product manager: Product Manager, Senior Product Manager;
+project manager: Project Manager, Construction Project Manager, IT Project Manager;
++IT support/sysadmin/system administrator: IT Support Specialist, Systems Administrator;
accountant: Accountant, Staff Accountant, Tax Accountant; bookkeeper: Bookkeeper, Payroll Clerk;
lawyer/attorney/solicitor: Solicitor, Corporate Lawyer, Legal Aid Attorney;
banker/bank teller: Bank Teller, Relationship Manager, Loan Officer;
salesperson/salespeople/sales rep/sales representative: Sales Representative, Account Executive, Field Sales Rep;
+marketer/marketing manager: Marketing Manager, Digital Marketer, Marketing Coordinator;
+consultant: Management Consultant, Independent Consultant;
journalist/reporter: Journalist, Local News Reporter, Freelance Journalist;
writer/author: Freelance Writer, Copywriter, Novelist; artist/illustrator: Illustrator, Visual Artist, Muralist;
musician: Session Musician, Music Teacher and Performer; photographer: Wedding Photographer, Freelance Photographer;
chef/cook: Line Cook, Head Chef, Restaurant Cook; waiter/waitress/server: Restaurant Server, Waiter, Café Server;
barista: Barista, Head Barista; -cashier/retail worker/shop assistant: Cashier, Retail Assistant, Store Associate;
small business owner/shopkeeper/shop owner: Small Business Owner, Bakery Owner, Hardware Store Owner, Café Owner;
+entrepreneur/founder/business owner: Startup Founder, Business Owner, Entrepreneur;
+freelancer/gig worker: Freelancer, Freelance Translator, Gig Worker;
-farmer/smallholder/grower: Smallholder Farmer, Dairy Farmer, Maize Farmer, Farmer;
-fisherman/fishermen/fisher: Fisherman, Small-Boat Fisher; mechanic: Auto Mechanic, Motorcycle Mechanic;
electrician: Electrician, Apprentice Electrician; plumber: Plumber, Plumbing Contractor;
-construction worker/builder/carpenter: Construction Worker, Carpenter, Site Foreman;
-driver/delivery driver/courier/trucker: Delivery Driver, Truck Driver, Rideshare Driver;
-factory worker/warehouse worker: Factory Worker, Warehouse Associate, Machine Operator;
police/police officer/cop: Police Officer, Police Sergeant; firefighter: Firefighter, Fire Station Officer;
soldier/veteran: Army Veteran, Soldier, Military Logistics Officer;
social worker: Social Worker, Child Protection Social Worker; librarian: Librarian, School Librarian;
civil servant/public servant/government employee: Civil Servant, Municipal Clerk, Policy Officer;
receptionist/admin assistant/administrative assistant: Receptionist, Administrative Assistant, Office Manager;
-cleaner/janitor/housekeeper: Office Cleaner, Housekeeper, Janitor;
hairdresser/barber: Hairdresser, Barber, Salon Owner; real estate agent/realtor: Real Estate Agent, Property Manager;
+pilot: Airline Pilot, First Officer; +architect: Architect, Landscape Architect;
+engineer: Civil Engineer, Mechanical Engineer, Electrical Engineer; -tailor/seamstress: Tailor, Seamstress;
-street vendor/market trader/vendor: Street Food Vendor, Market Trader;
stay-at-home parent/stay-at-home mom/stay-at-home dad/homemaker: Stay-at-Home Parent, Homemaker;
nonprofit worker/NGO worker/volunteer: Nonprofit Program Officer, NGO Field Coordinator, Volunteer Coordinator;
baker: Baker, Artisan Baker, Bakery Owner; butcher: Butcher, Butcher Shop Owner; florist: Florist, Flower Shop Owner;
bartender: Bartender, Bar Manager; restaurant owner/restaurant manager: Restaurant Owner, Restaurant Manager;
hotel manager/hotel staff: Hotel Manager, Front Desk Agent; tour guide: Tour Guide, Travel Guide;
event planner/wedding planner: Event Planner, Wedding Planner; +travel agent: Travel Agent, Travel Consultant;
+personal trainer/fitness instructor/fitness coach: Personal Trainer, Fitness Coach;
yoga teacher/yoga instructor: Yoga Teacher;
psychotherapist/psychologist/counsellor/counselor: Psychotherapist, Clinical Psychologist, School Counsellor;
midwife/midwives: Midwife, Community Midwife;
physiotherapist/physical therapist: Physiotherapist, Sports Physiotherapist;
veterinarian/veterinary surgeon: Veterinarian, Farm Vet, Veterinary Nurse; optician/optometrist: Optometrist, Optician;
+lab technician/laboratory technician: Laboratory Technician, Medical Lab Scientist;
+translator/interpreter: Translator, Court Interpreter, Freelance Translator;
+recruiter/HR manager/human resources manager: Recruiter, HR Manager, People Operations Lead;
+support agent/customer service agent/call center agent/call centre agent: Customer Support Agent, Call Centre Agent;
nanny/babysitter/childminder: Nanny, Childminder, Au Pair; teaching assistant: Teaching Assistant, Classroom Aide;
gardener/landscaper: Gardener, Landscaper, Groundskeeper; -security guard: Security Guard, Night Watchman;
-miner: Miner, Mine Shift Supervisor;
-welder: Welder, Fabricator; -house painter/painter and decorator/painter: House Painter, Painter and Decorator;
++content creator/influencer/streamer/youtuber/podcaster: Content Creator, Video Streamer, Podcaster;
++video editor/animator: Video Editor, Animator, Motion Designer;
actor/actress/performer: Actor, Stage Performer;
dancer/dance teacher: Dancer, Dance Teacher; athlete: Professional Athlete, Sports Coach;
pastor/priest/imam/rabbi/clergy: Parish Priest, Pastor, Imam, Rabbi; judge: District Judge, Magistrate;
+auditor/insurance agent/financial advisor/financial adviser: Auditor, Insurance Agent, Financial Adviser;
++trader/investor: Day Trader, Investment Analyst, Retail Investor; +economist: Economist, Policy Economist;
+logistics coordinator/supply chain manager: Logistics Coordinator, Supply Chain Manager;
+operations manager/store manager/retail manager: Operations Manager, Store Manager, Retail Manager;
-retiree/retired/pensioner: Retired
"""
_FORMER_JOBS = ("Postal Worker", "Schoolteacher", "Bus Driver", "Civil Engineer", "Bookkeeper", "Shop Owner")

_AGE_WORDS = (
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

_INTROS = (
    "{first} is {a_age}-year-old {occ} living in {place}.",
    "{first}, {age}, is {a_occ} in {place}.",
    "At {age}, {first} is {a_occ} and has called {place} home for most of {their} adult life.",
    "{first} is {a_occ} from {place}, {age} years old and rarely short of opinions.",
)
_WORK = {
    "work": (
        "{first} has been doing this work for {years} years and knows its shortcuts and blind spots well.",
        "The job is busy: a full schedule, a patchwork of tools and colleagues who all need something yesterday.",
        "{first} came into this line of work almost by accident and stayed because of the people.",
        "Most days {first} splits {their} time between the real work and the paperwork that surrounds it.",
        "{first} is the person colleagues ask when a system breaks or a form makes no sense.",
    ),
    "student": (
        "{first} balances coursework with a part-time job and a phone that is always close to dead.",
        "Deadlines, group chats and rent take up most of {their} attention these days.",
    ),
    "retired": (
        "After decades of work, {first} now fills the week with family, neighbours and a few stubborn projects.",
        "{first} stopped working a few years ago and is still adjusting to a fixed income.",
    ),
}
_LIFE = (
    "Most weekends, {first} {hobby}.",
    "Money is manageable but tight, and {first} keeps a careful eye on every recurring cost.",
    "When there is time to spare, {first} {hobby}.",
)
_HOBBIES = (
    "cooks for a large extended family", "sings in a community choir", "is restoring an old bicycle",
    "volunteers at a local food bank", "follows football with real devotion", "grows vegetables on a small plot",
    "is learning a new language through an app", "looks after an ageing parent", "coaches a children's sports team",
    "reads crime novels late into the night", "takes long walks with a very old dog",
)  # fmt: skip
_RECENT = (
    "Recently, {first} started using a budgeting app after a friend recommended it.",
    "This year {first} took on more responsibility after someone close needed help.",
    "Lately {first} has been thinking seriously about what the next five years should look like.",
    "A slow internet connection at home has made {first} wary of anything that only works online.",
)
_GOALS = (
    "Spend less time on paperwork and more with the people who matter", "Save enough for a home deposit",
    "Learn a skill that leads to better-paid work", "Find tools that keep working when the connection drops",
    "Keep the household budget predictable from month to month", "Get recognition for work that usually goes unnoticed",
    "Build a small side income", "Stay healthy and active", "Understand new technology without feeling rushed",
    "Take a proper holiday for the first time in years", "Help {their} community get better local services",
    "Organise {their} week so evenings stay free", "Pay off a lingering debt", "Mentor someone just starting out",
)  # fmt: skip
_FRUSTRATIONS = (
    "Apps that demand a new password every few weeks", "Unreliable internet at the worst possible moments",
    "Forms that ask for the same information three times", "Being talked down to by customer support",
    "Hidden fees that only appear at checkout", "Meetings that could have been a short message",
    "Updates that move every button around", "Prices rising faster than pay", "Long waits for simple answers",
    "Tools that assume everyone has the latest phone", "Rules that change without anyone explaining why",
    "Small print nobody has time to read", "Being expected to be reachable at all hours",
)  # fmt: skip
_TRAITS = (
    "pragmatic", "patient", "curious", "sceptical", "warm", "organised", "stubborn", "funny", "cautious", "generous",
    "direct", "resourceful", "anxious about money", "loyal", "impatient with jargon", "detail-oriented", "optimistic",
    "reserved", "competitive", "thoughtful", "easily bored", "community-minded", "independent", "early riser",
)  # fmt: skip
_STYLES = (
    "Short, practical messages; prefers a phone call when something is urgent.",
    "Warm and chatty, with plenty of questions before making a decision.",
    "Direct and to the point; has little patience for marketing language.",
    "Careful and polite, and double-checks everything in writing.",
    "Uses voice notes more than text and mixes humour into serious topics.",
    "Writes long, detailed emails and expects the same in return.",
    "Quiet in groups but thorough and candid one to one.",
)
_QUOTES = (
    "If it takes more than three taps, I'll do it on paper.", "I don't need more features, I need fewer surprises.",
    "Tell me what it costs before you tell me what it does.", "Good tools get out of the way so I can do my job.",
    "Show me once and I'll remember, but please only show me once.", "I trust people before I trust software.",
    "Everyone in {place} knows someone who got burned by an app like this.", "Explain it like I'm busy, not stupid.",
    "I'll try anything that gives me an hour back in my week.", "Being {a_occ} means nobody else will fix it for me.",
)  # fmt: skip
_LEVELS: tuple[TechSavviness, ...] = ("novice", "basic", "intermediate", "advanced", "expert")
_FAMILY_FIRST = {"hu_HU": " ", "ko_KR": "", "zh_CN": ""}  # surname first; separator
_ROMANIZED = {"ja_JP", "zh_TW"}  # Latin-script names suit the English text around them
# Our own Latin-script names where Faker's are right-to-left only (Arabic) or not gendered (en_PK):
# "female names / male names / surnames".
_OWN_NAMES = {
    "ar_latn": "Amira Fatima Layla Nour Salma Yasmin Mariam Hana Rania Dina Huda Mona / Ahmed Omar Mahmoud Youssef "
    "Karim Tarek Hassan Khaled Mostafa Ibrahim Samir Hamza / Hassan Mansour El-Sayed Abdel-Rahman Farouk Nasser "
    "Haddad Saleh Fahmy Al-Harbi Al-Qahtani Othman",
    "ur_latn": "Ayesha Fatima Sana Hira Mahnoor Zara Maryam Amna Sadia Nida Rabia Saba / Muhammad Ali Usman Bilal "
    "Hamza Imran Asad Faisal Kamran Zeeshan Tariq Waqas / Khan Qureshi Malik Butt Chaudhry Siddiqui Sheikh Raza "
    "Hussain Iqbal Ahmed Mirza",
}
_TOKEN_RE = re.compile(r" ?\w{1,5}|\s|[^\w\s]{1,2}")  # word pieces, spaces and punctuation, like model tokens
_FAKERS: dict[str, Faker] = {}
_LOCK = threading.Lock()  # compose reseeds shared Faker instances


class _Country(NamedTuple):
    locales: tuple[str, ...]
    cities: tuple[str, ...]
    default: bool


class _Job(NamedTuple):
    tech: int
    titles: tuple[str, ...]


def _fold(text: str) -> str:
    """Lower case without accents, so 'Sao Paulo' finds 'São Paulo'."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def _words(forms: Iterable[str], plural: bool = False) -> re.Pattern[str]:
    """A regex for any of the forms as whole words (and their plurals)."""
    alts = "|".join(re.escape(_fold(f)).replace(r"\ ", r"[\s-]+") + ("(?:e?s)?" if plural else "") for f in forms)
    return re.compile(rf"(?<![\w.])(?<!latin )(?<!south )(?<!central )(?:{alts})(?!\w)")


# Regions within a country : their cities. A named region is a place like a city: the persona lives in
# one of its cities ("Columbus, Ohio"). Listed longest-first where one name contains another.
_REGION_TABLE = """\
United States : Alabama : Birmingham, Montgomery, Mobile, Huntsville
United States : Alaska : Anchorage, Fairbanks, Juneau
United States : Arizona : Phoenix, Tucson, Flagstaff, Mesa
United States : Arkansas : Little Rock, Fayetteville, Fort Smith
United States : California : Los Angeles, San Diego, San Jose, Sacramento, Fresno, Oakland
United States : Colorado : Denver, Colorado Springs, Boulder, Fort Collins
United States : Connecticut : Hartford, New Haven, Stamford, Bridgeport
United States : Delaware : Wilmington, Dover, Newark
United States : Florida : Miami, Orlando, Tampa, Jacksonville, Tallahassee
United States : Georgia : Atlanta, Savannah, Augusta, Macon
United States : Hawaii : Honolulu, Hilo, Kailua
United States : Idaho : Boise, Idaho Falls, Pocatello
United States : Illinois : Chicago, Springfield, Peoria, Rockford
United States : Indiana : Indianapolis, Fort Wayne, Bloomington, South Bend
United States : Iowa : Des Moines, Cedar Rapids, Iowa City, Davenport
United States : Kansas : Wichita, Kansas City, Topeka, Lawrence
United States : Kentucky : Louisville, Lexington, Bowling Green
United States : Louisiana : New Orleans, Baton Rouge, Shreveport, Lafayette
United States : Maine : Portland, Bangor, Augusta
United States : Maryland : Baltimore, Annapolis, Frederick, Rockville
United States : Massachusetts : Boston, Worcester, Springfield, Cambridge
United States : Michigan : Detroit, Grand Rapids, Lansing, Ann Arbor
United States : Minnesota : Minneapolis, Saint Paul, Duluth, Rochester
United States : Mississippi : Jackson, Gulfport, Hattiesburg
United States : Missouri : Kansas City, St. Louis, Springfield, Columbia
United States : Montana : Billings, Missoula, Bozeman, Helena
United States : Nebraska : Omaha, Lincoln, Grand Island
United States : Nevada : Las Vegas, Reno, Henderson, Carson City
United States : New Hampshire : Manchester, Nashua, Concord
United States : New Jersey : Newark, Jersey City, Trenton, Princeton
United States : New Mexico : Albuquerque, Santa Fe, Las Cruces
United States : New York State/Upstate New York : Buffalo, Rochester, Albany, Syracuse, Ithaca
United States : North Carolina : Charlotte, Raleigh, Durham, Asheville
United States : North Dakota : Fargo, Bismarck, Grand Forks
United States : Ohio : Columbus, Cleveland, Cincinnati, Toledo, Dayton
United States : Oklahoma : Oklahoma City, Tulsa, Norman
United States : Oregon : Portland, Eugene, Salem, Bend
United States : Pennsylvania : Philadelphia, Pittsburgh, Harrisburg, Allentown
United States : Rhode Island : Providence, Warwick, Newport
United States : South Carolina : Charleston, Columbia, Greenville
United States : South Dakota : Sioux Falls, Rapid City, Pierre
United States : Tennessee : Nashville, Memphis, Knoxville, Chattanooga
United States : Texas : Houston, Austin, Dallas, San Antonio, El Paso
United States : Utah : Salt Lake City, Provo, Ogden, St. George
United States : Vermont : Burlington, Montpelier, Rutland
United States : West Virginia : Charleston, Morgantown, Huntington
United States : Virginia : Richmond, Virginia Beach, Norfolk, Arlington
United States : Washington State : Seattle, Spokane, Tacoma, Olympia
United States : Wisconsin : Milwaukee, Madison, Green Bay
United States : Wyoming : Cheyenne, Casper, Laramie
Canada : Ontario : Toronto, Ottawa, Hamilton, London
Canada : Quebec/Québec : Montreal, Quebec City, Gatineau, Sherbrooke
Canada : British Columbia : Vancouver, Victoria, Kelowna, Surrey
Canada : Alberta : Calgary, Edmonton, Red Deer, Lethbridge
Canada : Manitoba : Winnipeg, Brandon, Steinbach
Canada : Saskatchewan : Saskatoon, Regina, Prince Albert
Canada : Nova Scotia : Halifax, Sydney, Truro
Canada : New Brunswick : Moncton, Saint John, Fredericton
Canada : Newfoundland : St. John's, Corner Brook, Gander
Australia : New South Wales/NSW : Sydney, Newcastle, Wollongong
Australia : Queensland : Brisbane, Gold Coast, Cairns, Townsville
Australia : Western Australia : Perth, Bunbury, Geraldton
Australia : South Australia : Adelaide, Mount Gambier, Whyalla
Australia : Tasmania : Hobart, Launceston, Devonport
India : Maharashtra : Mumbai, Pune, Nagpur, Nashik
India : Karnataka : Bengaluru, Mysuru, Mangaluru, Hubballi
India : Tamil Nadu : Chennai, Coimbatore, Madurai
India : Kerala : Kochi, Thiruvananthapuram, Kozhikode
India : Gujarat : Ahmedabad, Surat, Vadodara
India : Rajasthan : Jaipur, Jodhpur, Udaipur
India : Uttar Pradesh : Lucknow, Kanpur, Varanasi, Agra
India : West Bengal : Kolkata, Howrah, Siliguri
"""

_PlaceRx = tuple[re.Pattern[str], tuple[str, ...], str, bool]  # (regex, cities to pick from, country, not a demonym)


@functools.cache
def _tables() -> tuple[dict[str, _Country], list[_PlaceRx], list[tuple[re.Pattern[str], _Job]], tuple[str, ...]]:
    """Parsed tables and their regexes, built on first use to keep import fast."""
    countries: dict[str, _Country] = {}
    places: list[_PlaceRx] = []
    for line in _REGION_TABLE.splitlines():  # regions first: "New Mexico" is not Mexico
        country, names, cities = (part.strip() for part in line.split(" : "))
        region = names.split("/")[0].removesuffix(" State")
        choices = tuple(f"{city.strip()}, {region}" for city in cities.split(","))
        places.append((_words(names.split("/")), choices, country, True))
    for line in _COUNTRY_TABLE.splitlines():
        names, locales, cities = (part.strip() for part in line.split(" : "))
        forms, _, demonyms = names.lstrip("*").partition(" ~ ")
        country = forms.split("/")[0]
        city_forms = [c.strip().split("/") for c in cities.split(",")]
        countries[country] = _Country(tuple(locales.split()), tuple(c[0] for c in city_forms), names[0] == "*")
        places += [(_words(c), (c[0],), country, True) for c in city_forms]  # a city before its country
        places.append((_words(forms.split("/")), (), country, True))
        if demonyms:
            places.append((_words(demonyms.split("/"), plural=True), (), country, False))
    jobs = []
    for entry in filter(None, (e.strip() for e in _JOB_TABLE.split(";"))):
        marked, _, titles = entry.partition(": ")
        job_forms = marked.lstrip("+-")
        nudge = marked[: len(marked) - len(job_forms)]
        job = _Job(nudge.count("+") - nudge.count("-"), tuple(titles.split(", ")))
        jobs.append((_words(job_forms.split("/"), plural=True), job))
    return countries, places, jobs, tuple(name for name, c in countries.items() if c.default)


def _places(text: str) -> list[tuple[tuple[str, ...], str]]:
    """Places named in the description, in order: (cities to pick from, or none, country)."""
    folded = _fold(text)
    hits: list[tuple[int, int, tuple[str, ...], str, bool]] = []
    in_regions: set[str] = set()  # cities named with their region ("Austin, Texas"), placed there
    for rx, cities, country, strong in _tables()[1]:
        region = len(cities) > 1
        m = next(
            (
                m
                for m in rx.finditer(folded)
                if not any(s <= m.start() < e for s, e, *_ in hits)
                and not (region and re.match(r"[\s-]+city\b", folded[m.end() :]))  # Kansas City is a city
            ),
            None,
        )
        if m is None:
            continue
        if region:  # a city of the region written just before it ("Austin, Texas"): that one
            before = folded[: m.start()]
            named = tuple(
                c for c in cities if re.search(rf"(?<![\w.]){re.escape(_fold(c.partition(', ')[0]))}[\s,]+$", before)
            )
            cities = named or cities
            in_regions.update(c.partition(", ")[0] for c in named)
        elif cities and cities[0] in in_regions and folded.count(_fold(cities[0])) == 1:
            continue  # that city was named with its region, not on its own
        hits.append((m.start(), m.end(), cities, country, strong))
    named_place = any(strong for *_, strong in hits)
    with_city = {country for _, _, cities, country, _ in hits if cities}
    return [
        (cities, country)
        for _, _, cities, country, strong in sorted(hits)
        if (strong or not named_place) and (cities or country not in with_city)  # "Sydney, Australia" is Sydney
    ]


def _occupation(text: str) -> list[_Job]:
    """Jobs named in the description, earliest (then longest) first."""
    folded = _fold(text)
    found = [(m.start(), -len(m[0]), i, job) for i, (rx, job) in enumerate(_tables()[2]) if (m := rx.search(folded))]
    return [job for *_, job in sorted(found)]


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


def _seeded(locale: str, rng: random.Random) -> Faker:
    """A cached Faker for the locale (slow to import and build), reseeded from the persona's randomness."""
    if locale not in _FAKERS:
        from faker import Faker
        from faker.config import AVAILABLE_LOCALES

        _FAKERS[locale] = Faker(locale if locale in AVAILABLE_LOCALES else "en_US")
    _FAKERS[locale].seed_instance(rng.getrandbits(64))
    return _FAKERS[locale]


def _name(fake: Faker, locale: str, female: bool) -> tuple[str, str]:
    """(given name, full name) in the order usual for the locale."""
    if locale in _OWN_NAMES:
        females, males, surnames = (part.split() for part in _OWN_NAMES[locale].split(" / "))
        first = fake.random.choice(females if female else males)
        return first, f"{first} {fake.random.choice(surnames)}"
    if locale in _ROMANIZED:
        first = fake.first_romanized_name_female() if female else fake.first_romanized_name_male()
        return first, f"{first} {fake.last_romanized_name()}"
    first = fake.first_name_female() if female else fake.first_name_male()
    if locale in _FAMILY_FIRST:
        return first, f"{fake.last_name()}{_FAMILY_FIRST[locale]}{first}"
    return first, f"{first} {fake.last_name()}"


def _faker_job(fake: Faker) -> str:
    """A Faker job, reordered from 'Therapist, art' to 'Art Therapist'."""
    head, _, tail = re.sub(r"\s*\(.*?\)", "", fake.job()).partition(", ")
    return " ".join(w[:1].upper() + w[1:] for w in f"{tail} {head}".split())


def _inline(title: str) -> str:
    """A title as it reads mid-sentence: lower case except acronyms."""
    return " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in title.split())


def _article(phrase: str) -> str:
    word = phrase.split()[0]
    if word.isupper() and len(word) > 1:  # read letter by letter: "an IT", "a UX"
        vowel = word[0] in "AEFHILMNORSX"
    else:
        vowel = word[0] in "aeio" or (word[0] == "u" and not word.startswith(("uni", "us")))
    return f"{'an' if vowel else 'a'} {phrase}"


class OfflineProvider:
    """Composes personas locally with Faker and streams them like a model would."""

    name = "offline"
    is_ai = False

    def __init__(
        self,
        *,
        seed: int | None = None,
        tokens_per_second: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not tokens_per_second >= 0:  # also rejects NaN
            raise ValueError(f"tokens_per_second must be 0 (no pacing) or more, got {tokens_per_second!r}")
        self.model = "offline-sample"
        self.seed = seed
        self.tokens_per_second = float(tokens_per_second)
        self._sleep = sleep
        self._clock = clock
        self._fresh = random.Random()

    @property
    def endpoint(self) -> str:
        return "local"

    @property
    def label(self) -> str:
        return "offline sample generator (not AI)"

    def _rng(self, description: str, index: int) -> random.Random:
        """Per-persona randomness, stable across processes under a seed (``hash()`` is not)."""
        if self.seed is None:
            return random.Random(self._fresh.getrandbits(64))
        key = f"{self.seed}\x00{' '.join(description.lower().split())}\x00{index}".encode()
        return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))

    def compose(self, description: str, index: int = 0, avoid_names: Iterable[str] = ()) -> Persona:
        """One persona for the description, without streaming."""
        with _LOCK:
            return self._compose(description, index, {n.strip().casefold() for n in avoid_names})

    def _compose(self, description: str, index: int, avoid: set[str]) -> Persona:
        rng = self._rng(description, index)
        countries, _, _, defaults = _tables()
        places = _places(description)  # several places: the personas take turns
        cities, country = places[index % len(places)] if places else ((), rng.choice(defaults))
        locale = rng.choice(countries[country].locales)
        fake = _seeded(locale, rng)
        city = cities[0] if len(cities) == 1 else rng.choice(cities or countries[country].cities)
        rural = re.search(r"\b(?:rural|villages?|countryside)\b", description, re.I) is not None
        location = f"Rural area near {city}, {country}" if rural else f"{city}, {country}"
        place = f"the countryside near {city}" if rural else city

        female = rng.random() < 0.5
        pronouns = "they/them" if rng.random() < 0.06 else ("she/her" if female else "he/him")
        first, name = _name(fake, locale, female)
        for attempt in range(1, 200):  # redraw, same gender, so the rest of the persona is unchanged
            if name.casefold() not in avoid:
                break
            if attempt == 100:  # a locale with few names: widen the pool
                locale, fake = "en_US", _seeded("en_US", rng)
            first, name = _name(fake, locale, female)
        base, suffix = name, 0
        while name.casefold() in avoid:  # a pathological avoid list: disambiguate
            suffix += 1
            name = f"{base} ({suffix})"

        jobs = _occupation(description)
        others = [job for job in jobs if job.titles != ("Retired",)]
        retired = len(others) < len(jobs)
        if retired:
            occupation = f"Retired {rng.choice(others[0].titles if others else _FORMER_JOBS)}"
        else:
            occupation = rng.choice(jobs[0].titles) if jobs else ""
        span = _age_range(description) or ((62, 85) if retired else (18, 26) if "Student" in occupation else None)
        age = rng.randint(*span) if span else round(rng.triangular(21, 67, 36))
        if not occupation:  # nothing asked for: school for the young, else any job Faker knows
            young = "Primary School Pupil" if age < 12 else "Secondary School Student" if age < 18 else "Student"
            occupation = young if age < 20 else _faker_job(_seeded("en_US", rng))
        kind = "retired" if retired else "student" if "Student" in occupation or "Pupil" in occupation else "work"
        words = {
            "first": first,
            "age": age,
            "a_age": f"{'an' if str(age).startswith('8') or age in (11, 18) else 'a'} {age}",
            "place": place,
            "occ": _inline(occupation),
            "a_occ": _article(_inline(occupation)),
            "their": {"she/her": "her", "he/him": "his"}.get(pronouns, "their"),
            "years": max(2, min(age - 18, rng.randint(2, 25))),
            "hobby": rng.choice(_HOBBIES),
        }
        sentences = [rng.choice(_INTROS), rng.choice(_WORK[kind]), rng.choice(_LIFE), rng.choice(_RECENT)]
        tech = 2 + (others[0].tech if others else -1 if retired else 0)
        tech += (1 if age < 30 else -1 if age >= 60 else 0) - (age >= 75) + rng.choice((-1, 0, 0, 1))
        return Persona(
            name=name,
            age=age,
            pronouns=pronouns,
            location=location,
            occupation=occupation,
            background=" ".join(s.format(**words) for s in sentences[: rng.randint(2, 4)]),
            goals=[g.format(**words) for g in rng.sample(_GOALS, rng.randint(2, 4))],
            frustrations=rng.sample(_FRUSTRATIONS, rng.randint(2, 4)),
            personality_traits=rng.sample(_TRAITS, rng.randint(3, 5)),
            tech_savviness=_LEVELS[min(4, max(0, tech))],
            communication_style=rng.choice(_STYLES),
            quote=rng.choice(_QUOTES).format(**words),
        )

    def prepare(self) -> None:
        """Nothing to set up ahead of time."""

    async def stream(self, spec: PromptSpec) -> AsyncGenerator[StreamPart, None]:
        """Yield the persona's JSON in token-sized pieces, paced at ``tokens_per_second``."""
        # Faker's first import takes a moment: keep the event loop (and the UI) responsive.
        persona = await asyncio.to_thread(self.compose, spec.description, spec.index, spec.avoid_names)
        text = json.dumps(persona.model_dump(mode="json"), ensure_ascii=False)
        rate = self.tokens_per_second
        start: float | None = None
        unyielded = 0  # pieces since the event loop last had a chance to deliver a cancel
        for i, piece in enumerate(_TOKEN_RE.findall(text)):
            if rate > 0:
                now = self._clock()
                if start is None:
                    start = now
                # Piece i is due i/rate seconds after the first. Pieces already due go out
                # at once, so oversleeping is made up for instead of adding up per piece.
                elif (wait := start + i / rate - now) > 0:
                    await self._sleep(wait)
                    unyielded = 0
            if unyielded >= 50:
                await self._sleep(0)
                unyielded = 0
            unyielded += 1
            yield AnswerPart(piece)

    async def aclose(self) -> None:
        """Nothing to release: no connection, no files."""


class OfflineOptions(BaseModel):
    """The offline generator's options (settings of the same names)."""

    seed: int | None = Field(default=None, ge=0)
    offline_tokens_per_second: float = Field(default=80.0, ge=0)


def _build(options: BaseModel, settings: Settings) -> OfflineProvider:
    assert isinstance(options, OfflineOptions)
    return OfflineProvider(seed=options.seed, tokens_per_second=options.offline_tokens_per_second)


PROVIDER = ProviderInfo(
    name="offline",
    title="the offline sample generator: personas composed from templates, not AI",
    build=_build,
    options=OfflineOptions,
    setup_hint="Nothing to set up: it works without a key or a network.",
    is_ai=False,
    ready=lambda settings: True,
    auto_rank=1000,
)
"""Registered in ``pyproject.toml`` under the ``persona_tui.providers`` entry points."""
