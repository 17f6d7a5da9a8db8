"""The reaper's loop. Each pass asks the Query Service for candidates and the State Manager to move them;
the State Manager re-checks each row in its UPDATE and answers only what it moved, so a second reaper
running at once never moves (or posts about) the same run twice."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from jobmon.core import routes
from jobmon.core.config import ReaperConfig
from jobmon.core.daemon import run_passes
from jobmon.core.requester import JobmonRequestError, Requester
from jobmon.reaper.slack import SlackNotifier, run_message

log = logging.getLogger(__name__)

# A bounded number of pages per kind and pass, so one pass always ends (rows that keep answering as
# candidates but never move, e.g. a run heartbeating in between, cannot loop it).
MAX_PAGES = 20


@dataclass
class PassResult:
    run_moves: list[dict[str, Any]] = field(default_factory=list)
    instance_moves: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        return (f"reaper pass: {len(self.run_moves)} run(s) and {len(self.instance_moves)} instance(s) "
                f"moved in {self.seconds:.3f} s")


# Run moves: the route's name and the ReaperConfig threshold it is given (None: it takes none).
_RUN_KINDS: tuple[tuple[str, str | None], ...] = (
    ("lost_runs", "loss_threshold"),
    ("stuck_runs", "stuck_threshold"),
    ("resumed_runs", None),
)


class Reaper:
    def __init__(self, config: ReaperConfig, requester: Requester, notifier: SlackNotifier) -> None:
        self.config = config
        self.requester = requester
        self.notifier = notifier

    def announce(self) -> None:
        """Says once, at start, that the reaper is alive and how it is set."""
        text = (f"Jobmon reaper alive: polling {self.requester.base_url} every "
                f"{self.config.poll_interval:g} s; lost after {self.config.loss_threshold:g} s, stuck after "
                f"{self.config.stuck_threshold:g} s, instances lost {self.config.overdue_threshold:g} s "
                f"past their deadline; Slack {'on' if self.notifier.enabled else 'off'}")
        log.info("%s", text)
        self.notifier.post(text)

    def reap_once(self) -> PassResult:
        """One pass over every kind of move. Raises JobmonRequestError when the service is unreachable."""
        started = time.monotonic()
        result = PassResult()
        for kind, threshold_name in _RUN_KINDS:
            threshold = getattr(self.config, threshold_name) if threshold_name else None
            for move in self._pages(kind, "workflow_runs", "workflow_run_id", "workflow_run_ids",
                                    threshold):
                log.warning("%s", run_message(move))
                self.notifier.post(run_message(move))
                result.run_moves.append(move)
        for move in self._pages("overdue_instances", "task_instances", "task_instance_id",
                                "task_instance_ids", self.config.overdue_threshold):
            # Instances are logged, not posted: a lost node can lose thousands at once.
            log.warning("reaper: task instance %s (task %s, workflow %s run %s, user %s) %s -> %s; "
                        "task -> %s",
                        move["task_instance_id"], move["task_id"], move["workflow_id"],
                        move["workflow_run_id"], move["user"], move["old_status"], move["new_status"],
                        move["task_status"])
            result.instance_moves.append(move)
        result.seconds = time.monotonic() - started
        return result

    def _pages(self, kind: str, answer_key: str, id_key: str, body_key: str,
               threshold: float | None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": self.config.batch_size}
        body_extra: dict[str, Any] = {}
        if threshold is not None:
            params["threshold"] = threshold
            body_extra["threshold"] = threshold
        moves: list[dict[str, Any]] = []
        for _page in range(MAX_PAGES):
            found = self.requester.get(routes.reaper_candidates(kind), params)[answer_key]
            if not found:
                break
            ids = [row[id_key] for row in found]
            moved: list[dict[str, Any]] = self.requester.post(
                routes.reaper_move(kind), {body_key: ids, **body_extra})["moved"]
            moves += moved
            if len(found) < self.config.batch_size or not moved:
                break
        return moves

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set. A failed pass (service or database down) is logged and the next pass
        tries again; nothing but ``stop`` ends the loop."""
        self.announce()
        run_passes(lambda: str(self.reap_once()), name="jobmon-reaper",
                   interval=self.config.poll_interval, stop=stop, log=log,
                   health_file=self.config.health_file,
                   known_failures={JobmonRequestError: "service unavailable?"})
