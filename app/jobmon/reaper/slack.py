"""Slack notifications through slack-sdk's WebClient.

A 429 is retried by slack-sdk's RateLimitErrorRetryHandler (it waits the Retry-After the answer names);
any other failure is logged and dropped: Slack being down must never stop the reaper.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from jobmon.core.config import ReaperConfig
from jobmon.core.states import WorkflowRunStatus, WorkflowStatus

log = logging.getLogger(__name__)

# Letter -> the word a Slack reader sees, e.g. "C" -> "cold-resume".
RUN_STATES = {s.value: s.name.lower().replace("_", "-") for s in WorkflowRunStatus}
WORKFLOW_STATES = {s.value: s.name.lower().replace("_", "-") for s in WorkflowStatus}


def run_message(move: dict[str, Any]) -> str:
    """One line naming the workflow (id and name), the run, its user and the old and new state."""
    old, new = move["old_status"], move["new_status"]
    text = (
        f"Jobmon reaper: workflow {move['workflow_id']} \"{move['workflow_name']}\" "
        f"run {move['workflow_run_id']} (user {move['user']}) moved {old} ({RUN_STATES.get(old, '?')})"
        f" -> {new} ({RUN_STATES.get(new, '?')})"
    )
    wf_new = move.get("workflow_new_status")
    if wf_new:
        wf_old = move.get("workflow_old_status", "?")
        text += (f"; workflow {wf_old} ({WORKFLOW_STATES.get(wf_old, '?')}) -> {wf_new} "
                 f"({WORKFLOW_STATES.get(wf_new, '?')})")
    return text


class SlackNotifier:
    """Posts to one channel; ``enabled`` is False (and posting a no-op) without a token."""

    def __init__(self, config: ReaperConfig) -> None:
        self.channel = config.slack_channel
        self.client: WebClient | None = None
        if not config.slack_token:
            log.warning("no Slack token configured ([reaper] slack_token): Slack notifications are off")
            return
        self.client = WebClient(
            token=config.slack_token, base_url=config.slack_base_url,
            timeout=max(1, round(config.slack_timeout)),
            retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=config.slack_rate_limit_retries)],
        )

    @property
    def enabled(self) -> bool:
        return self.client is not None

    def post(self, text: str) -> bool:
        """Post one message; answers whether Slack took it. Never raises."""
        if self.client is None:
            return False
        try:
            self.client.chat_postMessage(channel=self.channel, text=text)
        except Exception as exc:  # SlackApiError, HTTP 5xx, a refused connection: all only logged
            log.error("Slack post to %s failed (message dropped): %s: %s", self.channel,
                      type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            return False
        return True
