"""The workshop: exercises in examples/exercises/NN-topic/, and a checker for each.

``exercises`` (pure: one check function per exercise, taking the observed state) and
``gather`` (the adapter that observes it with kubectl and docker); ``command`` wires
``reconcile-lab exercise list|check``.
"""
