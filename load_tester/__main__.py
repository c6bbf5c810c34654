"""`python -m load_tester`: the same command as `python load_tester/test.py`."""

from load_tester.cli import command

if __name__ == "__main__":
    command(prog="python -m load_tester")
