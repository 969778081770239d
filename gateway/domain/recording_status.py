"""Whether this gateway can record sessions.

It can (issue 9): the host starts a recording for a purpose the policy lists, only when
everyone who would be recorded has consent (services/live/recording.py), and the embedded
relay's recorder writes each consenting person's own tracks, encrypted as written. The texts
shown to people (the join page's notice, the policy in plain English) follow this flag, and the
tests of services/live/recording.py hold the policy's recording rules to account.
"""

from __future__ import annotations

RECORDING_AVAILABLE = True
