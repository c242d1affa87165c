"""Inverse FM: Wasserstein loss with exact gradients, ratio search, envelope fitting, bank building."""
