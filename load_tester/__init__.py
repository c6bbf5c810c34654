"""Load tester for the smart grid gateway: fire charging requests and summarise what came back.

Run it as `python load_tester/test.py` or `python -m load_tester`; see test.py for usage examples.
"""
