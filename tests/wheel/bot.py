# The README's five-line bot, pointed at the test's sandbox (argv[1]).
import sys
import kite_setup

kite = kite_setup.kite(sandbox_url=sys.argv[1])
print(kite.profile()["user_id"])
