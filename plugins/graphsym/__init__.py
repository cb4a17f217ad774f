"""graphsym: GATv2 estimation of post-physical-synthesis delay and area of netlists.

Method: GraPhSyM (graph neural network estimation of post-synthesis metrics). Training data
are prefix adders generated here, mapped by Yosys/ABC onto a Liberty library (the
pre-physical netlist) and then buffered and sized by ABC at a delay target (the
post-physical netlist); delay and area of both come from this package's own NLDM timer.

NOTE: the package so far provides designs, netlists, the library and the timer as a library;
its components (dataset, graph encoder, heads) are not registered with adaptlab yet.
"""
