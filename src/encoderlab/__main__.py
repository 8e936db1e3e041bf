"""`python -m encoderlab` is the same as the `encoderlab` command."""

from .cli import main

if __name__ == "__main__":
    main()
