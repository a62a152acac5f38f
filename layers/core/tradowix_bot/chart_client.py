"""Old import path of `tradowix_bot.client.chart_client`, kept so partner bots written before the package
split (issue 15) run unchanged. This name is that very module (same classes, same exceptions,
patching one patches the other), not a copy: nothing to keep in step."""

import sys

from tradowix_bot.client import chart_client

sys.modules[__name__] = chart_client
