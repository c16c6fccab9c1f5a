"""An example physim plugin: a 1/f readout-gain noise source and a chip-yield study measure.

physim imports the two modules through the entry points in ``pyproject.toml``; importing this
package by hand is not needed.
"""

__version__ = "0.1.0"
