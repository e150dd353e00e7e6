"""A generated text classification dataset and a tokenizer trained on it (for recipes and tests).

Sentences are built from topic words (sports, weather, food); the label is the topic. The
tokenizer is a word-level ``tokenizers`` model trained on the training split, with
``[PAD]`` = 0 and ``[UNK]`` = 1. Everything depends only on the arguments.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

TOPICS = {
    "sports": ["match", "goal", "team", "coach", "score", "league", "player", "season", "win", "referee"],
    "weather": ["rain", "storm", "sunny", "cloud", "wind", "forecast", "snow", "cold", "warm", "humid"],
    "food": ["bread", "cheese", "soup", "recipe", "bake", "spicy", "salad", "dinner", "sweet", "oven"],
}
FILLER = ["the", "a", "today", "really", "was", "very", "we", "saw", "and", "then", "it", "so", "some", "new"]


def sentence(rng: random.Random, topic: str) -> str:
    words = [rng.choice(TOPICS[topic]) for _ in range(rng.randint(1, 3))]
    words += [rng.choice(FILLER) for _ in range(rng.randint(3, 12))]
    rng.shuffle(words)
    return " ".join(words)


def write_demo(root: Path, *, train: int = 600, val: int = 150, seed: int = 0) -> dict[str, int]:
    """Write ``root/train.jsonl``, ``root/val.jsonl`` and ``root/tokenizer.json``; rows per split."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    root.mkdir(parents=True, exist_ok=True)
    topics = sorted(TOPICS)
    counts = {"train": train, "val": val}
    for number, (split, count) in enumerate(counts.items()):
        rng = random.Random(seed * 10 + number)
        with (root / f"{split}.jsonl").open("w", encoding="utf-8") as out:
            for index in range(count):
                label = index % len(topics)
                out.write(json.dumps({"text": sentence(rng, topics[label]), "label": label}) + "\n")
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]"])
    lines = [json.loads(line)["text"] for line in (root / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    tokenizer.train_from_iterator(lines, trainer=trainer)
    tokenizer.save(str(root / "tokenizer.json"))
    return counts
