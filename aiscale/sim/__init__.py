"""The simulator's parts: declared laws, vectorised generation, OTLP writer, truth.

The public face is :mod:`aiscale.sim.simulate`.
"""
