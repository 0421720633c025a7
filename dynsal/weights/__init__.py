"""Published weights: the registry (`registry.json` beside this file), download and verification.

Nothing here downloads unless asked (`dynsal weights fetch`); weights are never in git.
"""
