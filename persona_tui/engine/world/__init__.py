"""What persona-tui knows about the world, without a model: countries, regions and their
cities, jobs and their titles and families, the phrases personas are written from, US and British
wording, and how a description names them (``data/*.toml``).

The population plan reads a description with it to spread places and occupations over a
batch, and the offline generator composes its personas from it. Nothing here is loaded at
import: the tables and regexes are built on first use.
"""
