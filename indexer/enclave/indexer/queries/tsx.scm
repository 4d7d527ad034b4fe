; inherits: typescript
; TSX: the TypeScript patterns (the TSX grammar has the same node types plus JSX).
