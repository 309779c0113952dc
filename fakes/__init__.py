"""Local stand-ins for the remote provider APIs (Pelm, WattShift, ...), which cannot be reached
from a development machine or CI. Each follows its provider's published documentation: the
headers and tokens it checks, its error bodies, pagination and windows, rate limits. The real
client code in :mod:`espi.providers` runs against them over HTTP; ``make run`` serves them so
the third-party app can connect through them."""
