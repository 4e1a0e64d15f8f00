"""The trainable (HAN) profiles' pieces; ``rp_jax.profiles.trainable`` trains them.

config: ``TrainableConfig``; structure: the graph as dense relation blocks; modules: the Flax
HAN layer, encoder and self-supervised heads; ssl: masks, loss and initialisation.
"""
