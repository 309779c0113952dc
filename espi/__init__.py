"""espi: Green Button / ESPI (NAESB REQ.21) data in Python.

import espi
feed = espi.parse("usage.xml")               # the whole document, linked
for r in espi.iter_readings("bulk.xml"):     # every reading, streamed in flat memory
    print(r.start_datetime, r.quantity, r.unit, r.cost_amount)
"""

from . import builder, codes, model, scope, timeparams
from .codes import *  # noqa: F403 - the code lists are part of the public API
from .errors import (
    AuthError,
    EspiError,
    EspiWarning,
    NotReady,
    ParseError,
    ProviderError,
    Quirk,
    RateLimited,
    SchemaError,
    SchemaProblem,
    Unavailable,
)
from .model import *  # noqa: F403 - the model classes are part of the public API
from .reader import ParseOptions, ReadingStream, iter_readings, parse
from .schema import validate
from .writer import FeedWriter, WriteOptions, dumps, write

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "EspiError",
    "EspiWarning",
    "FeedWriter",
    "NotReady",
    "ParseError",
    "ParseOptions",
    "ProviderError",
    "Quirk",
    "RateLimited",
    "ReadingStream",
    "SchemaError",
    "SchemaProblem",
    "Unavailable",
    "WriteOptions",
    "builder",
    "codes",
    "dumps",
    "iter_readings",
    "model",
    "parse",
    "scope",
    "timeparams",
    "validate",
    "write",
]
