"""espi: Green Button / ESPI (NAESB REQ.21) data in Python.

import espi
feed = espi.parse("usage.xml")               # the whole document, linked
for r in espi.iter_readings("bulk.xml"):     # every reading, streamed in flat memory
    print(r.start_datetime, r.quantity, r.unit, r.cost_amount)
df = espi.to_dataframe("usage.xml")          # pandas, one row per reading (espi[pandas])
"""

from . import builder, codes, export, lint, model, scope, timeparams
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
from .export import to_dataframe
from .model import *  # noqa: F403 - the model classes are part of the public API
from .reader import ParseOptions, ReadingStream, iter_readings, parse
from .schema import validate
from .timeline import Timeline
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
    "Timeline",
    "builder",
    "codes",
    "dumps",
    "export",
    "iter_readings",
    "lint",
    "model",
    "parse",
    "scope",
    "timeparams",
    "to_dataframe",
    "validate",
    "write",
    *codes.__all__,
    *model.__all__,
]


def __dir__() -> list[str]:
    """The public API only (``dir(espi)``), not the names modules import."""
    return sorted(__all__)
