"""wifm_synth: learn FM synthesizer patches from recorded notes and play them live."""

import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

__version__ = "0.1.0"

# Compile caches of other source versions: the few most recently used are kept, so switching between two
# checkouts does not recompile every time; none used within the last hour is removed, because another
# running process (another checkout or install) may still write to it; none is kept past a week.
KEPT_CACHE_FOLDERS = 4
IN_USE_AGE_S = 3600.0
KEPT_CACHE_AGE_S = 7 * 24 * 3600.0


def _prune_other_caches(cache_root: Path, current: Path) -> None:
    """Remove compile caches of older package versions (stale folders are never read again)."""
    try:
        folders = sorted((folder for folder in cache_root.iterdir() if folder.is_dir() and folder != current),
                         key=lambda folder: folder.stat().st_mtime, reverse=True)
    except OSError:
        return
    now = time.time()
    for rank, folder in enumerate(folders, start=1):
        try:
            age = now - folder.stat().st_mtime
        except OSError:
            continue
        if age > KEPT_CACHE_AGE_S or (rank >= KEPT_CACHE_FOLDERS and age > IN_USE_AGE_S):
            shutil.rmtree(folder, ignore_errors=True)


def _key_numba_cache_on_the_sources() -> None:
    """Point Numba's on-disk cache at a folder named by a hash of every source file of the package.

    Numba checks a cached function against its own file only, so editing a kernel that a kernel in
    another file calls would otherwise keep running stale machine code. Respects a NUMBA_CACHE_DIR the
    user set. Numba reads its cache folder when a function is decorated, not only at import, so this
    also works when Numba was imported before this package (as long as no kernel of ours was built).
    """
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode())
        digest.update(source.read_bytes())
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cache_root = base / "wifm_synth" / "numba"
    cache = cache_root / digest.hexdigest()[:16]
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # not writable: Numba keeps its default cache beside the sources
    if not os.access(cache, os.W_OK):
        return
    os.environ["NUMBA_CACHE_DIR"] = str(cache)
    numba = sys.modules.get("numba")
    if numba is not None:
        numba.config.CACHE_DIR = str(cache)
    os.utime(cache)  # marks it as used for the pruning of other versions' folders
    _prune_other_caches(cache_root, cache)


_key_numba_cache_on_the_sources()
