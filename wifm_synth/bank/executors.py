"""Running fit jobs: in this process, on a pool of spawned worker processes, or on a Dask cluster.

A job is one sample's fit and quality scores (:mod:`wifm_synth.fit.verify`); each failure becomes an
outcome with a one-line reason, so one bad sample never stops the others. Dask workers must see the
samples at the same paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from wifm_synth.bank.workers import start_worker
from wifm_synth.errors import NoPitchError, WifmError
from wifm_synth.fit.drums import fit_drum_file
from wifm_synth.fit.fitter import FitSettings, fit_file
from wifm_synth.fit.verify import verify_fit
from wifm_synth.formats.patch_json import patch_from_dict
from wifm_synth.formats.sfz import RegionSound
from wifm_synth.library.region_sound import AnalysisSource, fit_region_sample
from wifm_synth.voice.patch import Patch

# Worker processes run one fit each at a time; more threads per process would only oversubscribe.
SINGLE_THREAD_ENVIRONMENT = {
    "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
}
# Jobs in flight per worker process: the one it fits and the next, so it never waits for the parent.
PREFETCH = 2
# Short summary-table names for the verification metrics.
METRIC_KEYS = {
    "multi-resolution log-spectral distance": "stft_db", "harmonic-level error": "harmonic_db",
    "envelope error": "envelope_db", "f0 error": "f0_cents",
}


@dataclass(frozen=True)
class FitJob:
    """One fit as sent to a worker process or Dask worker (picklable, self-contained)."""

    sample: str
    note: int | None
    settings: FitSettings
    cache_key: str
    sound: RegionSound | None = None  # an SFZ region's part of the sample and playing instructions
    unpitched: bool = False  # a drum: fitted at its key without pitch detection (fit.drums)


@dataclass
class FitOutcome:
    """What a fit job returns: the fitted patch document, or the one-line reason it failed."""

    cache_key: str
    patch: dict | None = None
    loss: float | None = None
    seconds: float = 0.0
    detected_note: float | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


def quality_metrics(patch: Patch, sample: str | os.PathLike | AnalysisSource) -> dict[str, float]:
    """The fit's scores against its sample (as in ``wifm report``): ``quality`` is where it sits between the
    sine floor (0) and the harmonic resynthesis limit (1); the others are the fit's raw metrics. Empty when the
    render has no measurable pitch; InputError when the sample cannot be read or analysed."""
    verification = verify_fit(patch, sample, midi_note=patch.pitch.reference_note,
                              velocity=patch.pitch.reference_velocity)
    metrics = {} if verification.quality is None else {"quality": round(verification.quality, 4)}
    metrics.update({METRIC_KEYS.get(score.name, score.name): round(score.fit, 4) for score in verification.scores})
    return metrics


def fit_job(job: FitJob) -> FitOutcome:
    """Fit and score one sample; every failure becomes an outcome with a one-line reason so the others go on."""
    started = time.perf_counter()
    if job.unpitched:
        return _drum_fit_job(job, started)
    try:
        try:
            if job.sound is None:
                result, fitted_audio = fit_file(job.sample, note=job.note, settings=job.settings), job.sample
            else:
                result, fitted_audio = fit_region_sample(job.sample, job.note, job.settings, job.sound)
        except NoPitchError:
            if job.note is None:
                raise
            # A noise-like note with a known key (a SoundFont's sound effects, a named sample) is fitted as a
            # drum is.
            outcome = _drum_fit_job(job, started)
            outcome.warnings.insert(0, f"no clear pitch: fitted unpitched at key {job.note}")
            return outcome
        result.patch.metadata["metrics"] = quality_metrics(result.patch, fitted_audio)
        document = result.patch.to_dict()
        patch_from_dict(document, job.sample)  # a patch the format rejects is this sample's failure, not the bank's
    except WifmError as error:
        return FitOutcome(job.cache_key, error=str(error), seconds=time.perf_counter() - started)
    except Exception as error:  # noqa: BLE001 - a bug on one sample must not stop the bank
        _reraise_interrupt(error)
        return FitOutcome(job.cache_key, seconds=time.perf_counter() - started,
                          error=f"{job.sample}: fit failed ({type(error).__name__}: {error})")
    return FitOutcome(job.cache_key, patch=document, loss=float(result.loss),
                      seconds=time.perf_counter() - started, detected_note=float(result.analysis.midi_note),
                      warnings=list(result.analysis.warnings))


def _reraise_interrupt(error: Exception) -> None:
    """A Ctrl-C that lands inside a compiled (Numba) function comes out as a SystemError caused by the
    KeyboardInterrupt; it is the user's interrupt, not this sample's failure."""
    if isinstance(error.__cause__, KeyboardInterrupt):
        raise error.__cause__


def _drum_fit_job(job: FitJob, started: float) -> FitOutcome:
    """fit_job for a drum: the fit's own band-spectrum distance is its score (a drum has no pitch to verify)."""
    try:
        fit = fit_drum_file(job.sample, job.note, velocity=job.settings.reference_velocity)
        fit.patch.metadata["metrics"] = {"band_db": round(fit.loss, 4)}
        document = fit.patch.to_dict()
        patch_from_dict(document, job.sample)
    except WifmError as error:
        return FitOutcome(job.cache_key, error=str(error), seconds=time.perf_counter() - started)
    except Exception as error:  # noqa: BLE001 - a bug on one sample must not stop the bank
        _reraise_interrupt(error)
        return FitOutcome(job.cache_key, seconds=time.perf_counter() - started,
                          error=f"{job.sample}: drum fit failed ({type(error).__name__}: {error})")
    return FitOutcome(job.cache_key, patch=document, loss=float(fit.loss), seconds=time.perf_counter() - started,
                      detected_note=float(job.note))


@contextlib.contextmanager
def _workers_start_ignoring_interrupts() -> Iterator[None]:
    """Processes started inside the block hold SIGINT back from their first instruction (a blocked signal
    stays blocked across exec) until ``start_worker`` ignores it: a Ctrl-C while a worker is still
    importing would otherwise print its traceback. This process only defers a Ctrl-C that lands here and
    takes it when the block ends (ignoring it instead would lose it); it stops its workers itself.
    Without ``pthread_sigmask`` the workers start with SIGINT ignored, at the cost of that window."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if hasattr(signal, "pthread_sigmask"):
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _single_thread_environment() -> Iterator[None]:
    """Set thread limits for processes started inside the block (they read them when importing)."""
    saved = {name: os.environ.get(name) for name in SINGLE_THREAD_ENVIRONMENT}
    os.environ.update(SINGLE_THREAD_ENVIRONMENT)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _pool_outcomes(jobs: list[FitJob], workers: int) -> Iterator[FitOutcome]:
    """Fit on ``workers - 1`` worker processes plus this one.

    This process has already imported the fitter, so it starts fitting at once while the workers
    start up; each worker holds ``PREFETCH`` jobs so that it never waits for this process to come
    back from a fit of its own. A worker that dies (killed, out of memory) breaks its pool: the jobs
    it held are rerun once on a fresh pool, and a job whose pool breaks again fails alone.
    """
    pool = _WorkerPool(workers - 1)
    queue = deque(jobs)
    suspects: set[str] = set()  # cache keys of jobs in flight when a pool broke

    try:
        pool.top_up(queue)
        while queue or pool.in_flight:
            finished = [future for future in pool.in_flight if future.done()]
            broken = [future for future in finished if isinstance(future.exception(), BrokenProcessPool)]
            if broken:
                for future, job in list(pool.in_flight.items()):
                    if future.done() and not future.cancelled() and future.exception() is None:
                        yield future.result()  # finished before the pool broke
                    elif job.cache_key in suspects:
                        yield FitOutcome(job.cache_key, error=f"{job.sample}: worker process died twice fitting it")
                    else:
                        suspects.add(job.cache_key)
                        queue.appendleft(job)
                pool.replace()
                pool.top_up(queue)
                continue
            for future in finished:
                yield _future_outcome(future, pool.in_flight.pop(future))
            pool.top_up(queue)
            if finished:
                continue
            if queue:
                yield fit_job(queue.popleft())
            else:
                wait(pool.in_flight, return_when=FIRST_COMPLETED)
    except KeyboardInterrupt:
        pool.stop_now()  # the fits under way would be lost with this process anyway
        raise
    finally:
        pool.executor.shutdown(wait=True, cancel_futures=True)


class _WorkerPool:
    """A process pool and the jobs it holds; replaced whole when one of its workers dies."""

    def __init__(self, size: int):
        self.size = size
        self.executor = self._start()
        self.in_flight: dict[Future, FitJob] = {}

    def _start(self) -> ProcessPoolExecutor:
        # "spawn": workers start clean (no copies of this process's threads or locks) and warm their own JIT cache.
        return ProcessPoolExecutor(max_workers=self.size, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=start_worker, initargs=(os.getpid(),))

    def top_up(self, queue: deque[FitJob]) -> None:
        with _single_thread_environment(), _workers_start_ignoring_interrupts():  # submit() starts the workers
            while queue and len(self.in_flight) < PREFETCH * self.size:
                job = queue.popleft()
                self.in_flight[self.executor.submit(fit_job, job)] = job

    def replace(self) -> None:
        self.stop_now()
        self.executor = self._start()
        self.in_flight = {}

    def stop_now(self) -> None:
        for process in list((getattr(self.executor, "_processes", None) or {}).values()):
            process.terminate()
        self.executor.shutdown(wait=False, cancel_futures=True)


def _future_outcome(future: Future, job: FitJob) -> FitOutcome:
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - a worker that died takes only its own fit
        return FitOutcome(job.cache_key, error=f"{job.sample}: worker process failed ({error})")


# An unreachable scheduler fails the bank within this many seconds (Dask's own default waits 30 s, retrying);
# a shorter Dask setting of the user's applies.
DASK_CONNECT_TIMEOUT_S = 10.0


def dask_client(address: str):
    """A client of the Dask scheduler at ``address``; its workers must see the samples at the same paths.

    Any failure to connect (refused, unroutable, a peer that is not a Dask scheduler) is one WifmError
    within DASK_CONNECT_TIMEOUT_S. The address is tried with a bare comm first: a Client that fails half-way
    hangs again as long closing itself when it is collected, and prints a traceback then."""
    try:
        import dask
        from dask.utils import parse_timedelta
        from distributed import Client
    except ImportError:
        raise WifmError("--dask-scheduler needs Dask: pip install 'wifm_synth[dask]'") from None
    configured = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds")
    timeout = min(configured, DASK_CONNECT_TIMEOUT_S)
    try:
        asyncio.run(_handshake(address, timeout))
        with dask.config.set({"distributed.comm.timeouts.connect": timeout}):
            return Client(address, set_as_default=False, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - whatever the peer did, the bank cannot run there
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else f"no answer within {timeout:g} s"
        if not isinstance(exc, (OSError, TimeoutError)):
            reason = f"not a Dask scheduler? {type(exc).__name__}: {reason}"
    raise WifmError(f"cannot connect to the Dask scheduler at {address} ({reason[:200]})")


async def _handshake(address: str, timeout: float) -> None:
    from distributed.comm import connect

    comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
    await comm.close()


def _dask_outcomes(jobs: list[FitJob], client) -> Iterator[FitOutcome]:
    from distributed import as_completed

    futures = client.map(fit_job, jobs, pure=False)
    jobs_by_key = {future.key: job for future, job in zip(futures, jobs)}
    for future in as_completed(futures, loop=client.loop):
        try:
            yield future.result()
        except Exception as error:  # noqa: BLE001 - a lost worker takes only its own fit
            job = jobs_by_key[future.key]
            yield FitOutcome(job.cache_key, error=f"{job.sample}: Dask task failed ({error})")


def outcomes(jobs: list[FitJob], workers: int, client) -> Iterator[FitOutcome]:
    """Each job's outcome as it finishes: on the Dask ``client`` if given, else on ``workers`` processes."""
    if client is not None:
        return _dask_outcomes(jobs, client)
    if workers == 1 or len(jobs) == 1:
        return map(fit_job, jobs)
    return _pool_outcomes(jobs, min(workers, len(jobs)))


def default_jobs() -> int:
    """The processors this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
