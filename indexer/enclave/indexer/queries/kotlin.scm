; Kotlin: definitions and imports for the Enclave chunker (captures: see indexer/langspec.py).

(class_declaration "class" name: (identifier) @name) @definition.class
(class_declaration "interface" name: (identifier) @name) @definition.interface
(object_declaration name: (identifier) @name) @definition.object
(companion_object) @definition.object
(function_declaration name: (identifier) @name) @definition.function

(import (qualified_identifier) @import)
