"""The benchmarks of `manage.py bench`, one module per app they measure.

The bench command imports every installed app's `benchmarks` module; importing this
package registers them all with core's registry (core/benchmarks.py).
"""

from . import (  # noqa: F401 - imported to register their benchmarks
    analytics,
    campaigns,
    members,
    points,
    segments,
    serving,
    tiers,
)
