"""`python -m loopsafe` runs the command line."""
from loopsafe.cli import main

if __name__ == "__main__":
    main()
