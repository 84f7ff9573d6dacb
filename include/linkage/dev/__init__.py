"""For development, demos and tests: the seed data (and its truth), and the embedded servers (nx-27017 and
FerretDB).

Imports `relations` and below (the seed writes each relation's documents); no run code imports it.
"""
