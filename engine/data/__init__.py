"""Stage data: loading files and Hub data sets, tokenizers, encoding rows."""
