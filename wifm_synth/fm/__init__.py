"""Pure FM maths: Bessel line spectra of operator graphs and the DX7 algorithm table."""
