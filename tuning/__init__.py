"""Search over ranks, budgets and architectures with Ray Tune: the ``adaptlab tune`` command.

:mod:`~adaptlab.tuning.space` turns a spec's ``search:`` section into Ray Tune domains and
trial specs, :mod:`~adaptlab.tuning.cluster` starts or joins a Ray cluster,
:mod:`~adaptlab.tuning.trainable` trains one trial, :mod:`~adaptlab.tuning.runner` builds and
runs the Tuner, and :mod:`~adaptlab.tuning.results` writes the tables and Pareto fronts.
"""
