"""SPICE netlists in and out of physim's LC devices, and ngspice as an independent check.

* :mod:`physim.spice.netlist` writes an ``lc_network`` (or an as-built instance) as an ngspice
  netlist; :mod:`physim.spice.instance` connects it to physim's instrument;
* :mod:`physim.spice.parse` reads a netlist back into an ``lc_network`` spec (and a
  dissipation spec for its resistors);
* :mod:`physim.spice.check` runs ngspice on an export and compares trajectories.
"""
