"""wifm_synth: learn FM synthesizer patches from recorded notes and play them live."""

import hashlib
import os
import sys
from pathlib import Path

__version__ = "0.1.0"


def _key_numba_cache_on_the_sources() -> None:
    """Point Numba's on-disk cache at a folder named by a hash of every source file of the package.

    Numba checks a cached function against its own file only, so editing a kernel that a kernel in
    another file calls would otherwise keep running stale machine code. Respects a NUMBA_CACHE_DIR the
    user set; does nothing when Numba was imported first (its settings are read at import).
    """
    if "NUMBA_CACHE_DIR" in os.environ or "numba" in sys.modules:
        return
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode())
        digest.update(source.read_bytes())
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cache = base / "wifm_synth" / "numba" / digest.hexdigest()[:16]
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # not writable: Numba keeps its default cache beside the sources
    if os.access(cache, os.W_OK):
        os.environ["NUMBA_CACHE_DIR"] = str(cache)


_key_numba_cache_on_the_sources()
