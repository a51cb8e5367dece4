"""loopsafe: find blocking database work on the asyncio event loop in FastAPI code."""

__version__ = "0.1.0"
