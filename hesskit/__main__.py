"""``python -m hesskit``: the command line (:mod:`hesskit.cli`)."""

from hesskit.cli import main

if __name__ == "__main__":
    main()
