/* The container startup workload: does nothing, successfully. */
int main(void) {
    return 0;
}
