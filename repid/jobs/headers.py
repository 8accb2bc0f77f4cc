"""The headers a job's message carries (besides `topic`, the actor name).

All values are strings (every broker carries string headers):

* `job-id` - the job id (also the broker message id);
* `job-attempt` - 1 for the first run, +1 per retry;
* `job-retries` - how many retries the job may have in total;
* `job-timeout` - seconds the run may take ("" = no limit);
* `job-priority` - "HIGH", "MEDIUM" or "LOW";
* `job-args-id` - present when the arguments are in the arguments bucket, not the payload;
* `job-result-id` / `job-result-ttl` - present when the result is to be stored (TTL in seconds,
  "" = no expiry);
* `job-due` - present on a delayed job (a deferred one, a retry): when it is due, a Unix time
  in seconds. A worker that receives it earlier (a delay longer than the broker holds one)
  sends it back to wait for the rest;
* `job-unique` - on a unique job (`Job(id_=...)`): the token of this enqueue's claim (random
  hex), so that its last outcome releases its own claim and a cancellation of it stops this
  run only, not a later one with the same id;
* `job-tick` - on a periodic job's run: the tick it runs for (Unix milliseconds).
"""

from __future__ import annotations

from dataclasses import dataclass

from repid.jobs.priorities import PrioritiesT

__all__ = ["JobHeaders"]

JOB_ID = "job-id"
ATTEMPT = "job-attempt"
RETRIES = "job-retries"
TIMEOUT = "job-timeout"
PRIORITY = "job-priority"
ARGS_ID = "job-args-id"
RESULT_ID = "job-result-id"
RESULT_TTL = "job-result-ttl"
DUE = "job-due"
UNIQUE = "job-unique"
TICK = "job-tick"


def _seconds(text: str | None) -> float | None:
    return float(text) if text else None


@dataclass(slots=True)
class JobHeaders:
    """A job message's headers, parsed."""

    job_id: str
    attempt: int
    retries: int
    timeout: float | None
    priority: PrioritiesT
    args_id: str | None
    result_id: str | None
    result_ttl: float | None
    due: float | None = None
    unique_token: str | None = None
    tick: int | None = None

    @property
    def unique(self) -> bool:
        """A unique job (`Job(id_=...)`)."""
        return self.unique_token is not None

    @classmethod
    def parse(cls, headers: dict[str, str]) -> JobHeaders:
        """Read the job headers; a missing or bad number raises ValueError."""
        try:
            priority = PrioritiesT[headers.get(PRIORITY) or "MEDIUM"]
        except KeyError:
            raise ValueError(f"bad {PRIORITY} header {headers.get(PRIORITY)!r}") from None
        return cls(
            job_id=headers[JOB_ID],
            attempt=int(headers.get(ATTEMPT) or 1),
            retries=int(headers.get(RETRIES) or 0),
            timeout=_seconds(headers.get(TIMEOUT)),
            priority=priority,
            args_id=headers.get(ARGS_ID) or None,
            result_id=headers.get(RESULT_ID) or None,
            result_ttl=_seconds(headers.get(RESULT_TTL)),
            due=_seconds(headers.get(DUE)),
            unique_token=headers.get(UNIQUE) or None,
            tick=int(headers[TICK]) if headers.get(TICK) else None,
        )

    def to_headers(self, topic: str) -> dict[str, str]:
        """The headers (with `topic`, the actor name) that carry these values."""
        headers = {
            "topic": topic,
            JOB_ID: self.job_id,
            ATTEMPT: str(self.attempt),
            RETRIES: str(self.retries),
            TIMEOUT: "" if self.timeout is None else repr(self.timeout),
            PRIORITY: self.priority.name,
        }
        if self.args_id is not None:
            headers[ARGS_ID] = self.args_id
        if self.result_id is not None:
            headers[RESULT_ID] = self.result_id
            headers[RESULT_TTL] = "" if self.result_ttl is None else repr(self.result_ttl)
        if self.due is not None:
            headers[DUE] = repr(self.due)
        if self.unique_token is not None:
            headers[UNIQUE] = self.unique_token
        if self.tick is not None:
            headers[TICK] = str(self.tick)
        return headers
