"""The simlab recording format: raw frames kept byte-for-byte plus normalised Parquet tables.

See ``docs/recording-format.md``. Write with :class:`RecordingWriter` (or an importer),
read with :class:`Recording`, check with :func:`verify`, re-derive with :func:`rebuild`.
The names are imported on first use (PEP 562): the recorder imports only the writer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simlab.lazy import lazy_api

# eager: the writer needs it anyway, and the function ``verify`` must shadow the submodule
# of the same name (a lazy lookup would find the module once anything imported it)
from .verify import VerifyReport, format_report, verify

_API = {
    "IMPORTERS": "importers", "ImportResult": "importers", "SourceError": "importers",
    "import_file": "importers", "seconds_to_ns": "importers", "RecordingError": "manifest",
    "RawFrame": "reader", "Recording": "reader", "UnknownStreamError": "reader",
    "FORMAT_VERSION": "schema",
    "RecordingWriter": "writer", "rebuild": "writer",
}

__all__ = [
    "FORMAT_VERSION", "IMPORTERS", "ImportResult", "RawFrame", "Recording", "RecordingError",
    "RecordingWriter", "SourceError", "UnknownStreamError", "VerifyReport", "format_report",
    "import_file", "rebuild", "seconds_to_ns", "verify",
]

if TYPE_CHECKING:
    from .importers import IMPORTERS, ImportResult, SourceError, import_file, seconds_to_ns
    from .manifest import RecordingError
    from .reader import RawFrame, Recording, UnknownStreamError
    from .schema import FORMAT_VERSION
    from .writer import RecordingWriter, rebuild


__getattr__, __dir__ = lazy_api(__name__, _API)
