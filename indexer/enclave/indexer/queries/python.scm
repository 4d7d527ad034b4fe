; Python: definitions and imports for the Enclave chunker.
; Captures: @definition.<kind> (the definition node), @name (its name), @import (module as written).
; A function inside a class becomes a "method" in the chunker.

(function_definition name: (identifier) @name) @definition.function
(class_definition name: (identifier) @name) @definition.class

(import_statement name: (dotted_name) @import)
(import_statement name: (aliased_import name: (dotted_name) @import))
(import_from_statement module_name: (_) @import)
(future_import_statement "__future__" @import)
