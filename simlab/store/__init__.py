"""The simlab recording format: raw frames kept byte-for-byte plus normalised Parquet tables.

See ``docs/recording-format.md``. Write with :class:`RecordingWriter` (or an importer),
read with :class:`Recording`, check with :func:`verify`, re-derive with :func:`rebuild`.
"""

from .importers import IMPORTERS, ImportResult, SourceError, import_file, seconds_to_ns
from .manifest import RecordingError
from .reader import RawFrame, Recording
from .schema import FORMAT_VERSION
from .verify import VerifyReport, format_report, verify
from .writer import RecordingWriter, rebuild

__all__ = [
    "FORMAT_VERSION", "IMPORTERS", "ImportResult", "RawFrame", "Recording", "RecordingError",
    "RecordingWriter", "SourceError", "VerifyReport", "format_report", "import_file", "rebuild",
    "seconds_to_ns", "verify",
]
