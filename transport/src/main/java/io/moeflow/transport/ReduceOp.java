package io.moeflow.transport;

/** Reduction of float32 values across ranks. */
public enum ReduceOp {
    /** Element-wise sum, added in a fixed order so every rank and every run gets the same bits. */
    SUM,
    /** The sum divided by the number of ranks (a correctly rounded float32 division of the sum). */
    AVERAGE
}
