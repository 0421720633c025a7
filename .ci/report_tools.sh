#!/usr/bin/env bash
# The tools that check dynsal eval's reports (tests/test_eval_reports.py): Debian's Chromium, run headless to open
# the HTML report, and pdflatex with booktabs to compile the LaTeX table. Measured on this project's machine
# (Debian 12): 41 packages, 172 MB to download, 565 MB on disk, 32 s to install.
set -euo pipefail
packages=(chromium texlive-latex-base texlive-latex-recommended)
if command -v chromium >/dev/null && command -v pdflatex >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3 4 5 6; do  # another apt may hold the dpkg lock for a while
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${packages[@]}"; then
        exit 0
    fi
    echo "report tools: apt-get failed (attempt $attempt); retrying in 20 s" >&2
    sleep 20
done
exit 1
