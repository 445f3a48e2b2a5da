"""Predict on raw text: python predict.py --serialization_dir out --input_file docs.txt --output_file preds.jsonl"""
from hmtl.cli import predict_main

if __name__ == "__main__":
    predict_main()
