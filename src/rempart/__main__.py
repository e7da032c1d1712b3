"""``python -m rempart`` and the ``rempart`` command (``main``)."""

from rempart.gcpause import paused


def main() -> None:
    """Run the command line, its start-up imports with the cyclic collector paused and their
    objects frozen after (long-lived, no garbage cycles: about a hundred collections for
    nothing, then one full scan of them all, 20-22 ms)."""
    with paused(freeze=True):
        from rempart.cli import main as cli_main
    cli_main()


if __name__ == "__main__":
    main()
