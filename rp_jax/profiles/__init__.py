"""Profile functions: index, flat, emb_gnn, text_gnn, trainable."""
