"""Layer 1-2: reading Vensim and XMILE files through PySD, with the file line of every equation."""
