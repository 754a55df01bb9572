"""Benchmarks (:mod:`.suite`, ``adlgame bench``) and the naive Mesa reference game they
compare against (:mod:`.naive_mesa`); nothing a user's runs import."""
