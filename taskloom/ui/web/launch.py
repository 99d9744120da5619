"""``python -m taskloom.ui.web.launch run APP ...``: the Streamlit server, with this process's output masked.

The web app decrypts secrets too (the Settings page's test message), and
Streamlit logs through handlers it creates when it is imported; wrapping the
streams first (:mod:`taskloom.ui.logmask`) means no line it prints shows a secret.
"""

from __future__ import annotations

import sys


def main() -> None:
    from taskloom.ui.logmask import mask_process_output

    mask_process_output(stdout=True)
    from streamlit.web import cli as streamlit_cli

    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(streamlit_cli.main())


if __name__ == "__main__":
    main()
