"""The FM voice model shared by every stage: topology, parameters, patch, spectra of operator graphs."""
