"""Clinical notes: loading (UTF-8 / GB18030) and fact extraction in English and Chinese."""
