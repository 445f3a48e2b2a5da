"""Evaluate a trained model on its test sets or a given file: python evaluate.py --serialization_dir out"""
from hmtl.cli import evaluate_main

if __name__ == "__main__":
    evaluate_main()
