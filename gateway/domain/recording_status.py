"""Whether this gateway can record sessions yet.

The recorder (issue 9: consenting participants' tracks, encrypted as written) is not built.
Until it is, no session is recorded whatever its purpose, and every text shown to people says
so: the join page's notice and the policy in plain English. The recorder's arrival flips this,
and its tests then hold the recording rules of the policy to account.
"""

from __future__ import annotations

RECORDING_AVAILABLE = False
