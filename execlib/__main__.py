"""python -m execlib"""

from .cli import main

raise SystemExit(main())
