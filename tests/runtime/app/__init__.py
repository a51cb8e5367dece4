"""A small FastAPI app whose endpoints are the positive and negative examples of LOOP1xx.

It is real code run for real by tests/runtime/test_event_loop.py: loopsafe scans this package,
and the test drives every endpoint on a live event loop to check that the endpoints loopsafe
flags stall the loop and the ones it leaves silent do not.

`app.lifecycle` (with `app.lifecycle_db` and `app.lifecycle_scoped`) is a second, separate
app for the session rules whose mistakes fail at runtime (LOOP205, LOOP301, LOOP302,
LOOP305), driven by tests/runtime/test_lifecycle_runtime.py.

`app.rules` (with `app.rules_db` and `app.rules_client`) is a third, for the rules whose
symptom is an error or a count rather than a stall (LOOP201-204, LOOP206, LOOP303, LOOP304,
LOOP401-403, LOOP501), driven by tests/runtime/test_rules_runtime.py.
"""
