"""The Numba disk cache is keyed on the package sources whatever the import order, and old keys are pruned."""

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROBE = ("import numba, numba.core.config as config; import wifm_synth; import os; "
         "print(os.environ['NUMBA_CACHE_DIR']); print(config.CACHE_DIR)")
PROBE_PACKAGE_FIRST = ("import wifm_synth, os; import numba.core.config as config; "
                       "print(os.environ['NUMBA_CACHE_DIR']); print(config.CACHE_DIR)")


def _cache_folders(tmp_path: Path, program: str) -> list[str]:
    environment = {key: value for key, value in os.environ.items() if key != "NUMBA_CACHE_DIR"}
    environment["XDG_CACHE_HOME"] = str(tmp_path)
    environment["PYTHONPATH"] = str(REPO)
    output = subprocess.run([sys.executable, "-c", program], env=environment, capture_output=True, text=True,
                            check=True, cwd=REPO).stdout.split()
    return output


def test_cache_folder_is_the_same_whether_numba_or_the_package_is_imported_first(tmp_path):
    numba_first = _cache_folders(tmp_path, PROBE)
    package_first = _cache_folders(tmp_path, PROBE_PACKAGE_FIRST)
    assert numba_first[0] == numba_first[1] == package_first[0] == package_first[1]
    assert Path(numba_first[0]).parent == tmp_path / "wifm_synth" / "numba"


def test_caches_of_other_versions_are_pruned(tmp_path):
    root = tmp_path / "wifm_synth" / "numba"
    for index, hours in enumerate([0.1, 0.2, 2, 3, 4, 5]):
        folder = root / f"old{index}"
        folder.mkdir(parents=True)
        stamp = time.time() - 3600 * hours
        os.utime(folder, (stamp, stamp))
    ancient = root / "ancient"
    ancient.mkdir()
    os.utime(ancient, (time.time() - 30 * 86400, time.time() - 30 * 86400))
    current = Path(_cache_folders(tmp_path, PROBE_PACKAGE_FIRST)[0])
    left = sorted(folder.name for folder in root.iterdir())
    # the current folder and the three most recently used others stay, and so does any used within the
    # hour (another process may be writing to it); older ones beyond those and month-old ones go
    assert left == sorted([current.name, "old0", "old1", "old2"])
